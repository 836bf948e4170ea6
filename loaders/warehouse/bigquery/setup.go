package bigquery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// schema returns t's columns as a BigQuery schema.
func schema(t *warehouse.Table) bq.Schema {
	s := make(bq.Schema, len(t.Columns))
	for i, c := range t.Columns {
		s[i] = &bq.FieldSchema{Name: c.Name, Type: bq.FieldType(c.Type), Description: c.Description, Required: c.Required}
	}
	return s
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// setup creates the dataset and tables, and patches existing tables
// with new columns and changed descriptions.
func setup(ctx context.Context, project, dataset, location string, dryRun bool, o Options) ([]string, error) {
	o = o.withDefaults()
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bq.NewClient: %w", err)
	}
	defer client.Close()
	var lines []string
	ds := client.Dataset(dataset)
	dsName := project + "." + dataset
	md, err := ds.Metadata(ctx)
	switch {
	case isNotFound(err):
		if dryRun {
			lines = append(lines, fmt.Sprintf("dataset %s: would create in %s", dsName, location))
			for _, t := range warehouse.Tables {
				lines = append(lines, fmt.Sprintf("table %s.%s: would create", dsName, t.Name))
			}
			return lines, nil
		}
		err := ds.Create(ctx, &bq.DatasetMetadata{
			Location:    location,
			Description: "Inventory change events: adjustments, stock levels, alerts, dead letters and nightly summaries.",
		})
		if err != nil && !isConflict(err) {
			return lines, fmt.Errorf("warehouse: setup: create dataset %s: %w", dsName, err)
		}
		lines = append(lines, fmt.Sprintf("dataset %s: created in %s", dsName, location))
	case err != nil:
		return lines, fmt.Errorf("warehouse: setup: get dataset %s: %w", dsName, err)
	case location != "" && !strings.EqualFold(md.Location, location):
		lines = append(lines, fmt.Sprintf("dataset %s: unchanged (it is in %s, not %s; a dataset cannot move)", dsName, md.Location, location))
	default:
		lines = append(lines, fmt.Sprintf("dataset %s: unchanged", dsName))
	}
	for _, t := range warehouse.Tables {
		line, err := setupTable(ctx, ds.Table(t.Name), t, dsName, dryRun)
		if err != nil {
			return lines, fmt.Errorf("warehouse: setup: table %s.%s: %w", dsName, t.Name, err)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func tableMetadata(t *warehouse.Table) *bq.TableMetadata {
	return &bq.TableMetadata{
		Description: t.Description,
		Schema:      schema(t),
		TimePartitioning: &bq.TimePartitioning{
			Type:  bq.DayPartitioningType,
			Field: t.PartitionColumn,
		},
		Clustering: &bq.Clustering{Fields: t.Clustering},
	}
}

func setupTable(ctx context.Context, tbl *bq.Table, t *warehouse.Table, dsName string, dryRun bool) (string, error) {
	name := dsName + "." + t.Name
	md, err := tbl.Metadata(ctx)
	if isNotFound(err) {
		if dryRun {
			return fmt.Sprintf("table %s: would create", name), nil
		}
		if err := tbl.Create(ctx, tableMetadata(t)); err != nil && !isConflict(err) {
			return "", fmt.Errorf("create: %w", err)
		}
		return fmt.Sprintf("table %s: created (partitioned by DATE(%s), clustered by %s)", name, t.PartitionColumn, strings.Join(t.Clustering, ", ")), nil
	}
	if err != nil {
		return "", fmt.Errorf("get: %w", err)
	}
	update, did, notes := tableUpdate(md, t)
	suffix := ""
	if len(notes) > 0 {
		suffix = "; warning: " + strings.Join(notes, "; ")
	}
	if len(did) == 0 {
		return fmt.Sprintf("table %s: unchanged%s", name, suffix), nil
	}
	if dryRun {
		return fmt.Sprintf("table %s: would update: %s%s", name, strings.Join(did, "; "), suffix), nil
	}
	if _, err := tbl.Update(ctx, update, md.ETag); err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	return fmt.Sprintf("table %s: updated: %s%s", name, strings.Join(did, "; "), suffix), nil
}

// tableUpdate compares an existing table with its definition t: the update
// that brings it to t, what the update does, and the differences it cannot
// fix (notes).
func tableUpdate(md *bq.TableMetadata, t *warehouse.Table) (update bq.TableMetadataToUpdate, did, notes []string) {
	merged, added, described, notes := mergeSchema(md.Schema, schema(t))
	if tp := md.TimePartitioning; tp == nil || tp.Field != t.PartitionColumn {
		notes = append(notes, fmt.Sprintf("not partitioned by %s (recreate the table to change it)", t.PartitionColumn))
	}
	if len(added) > 0 || len(described) > 0 {
		update.Schema = merged
		if len(added) > 0 {
			did = append(did, "added columns "+strings.Join(added, ", "))
		}
		if len(described) > 0 {
			did = append(did, "described columns "+strings.Join(described, ", "))
		}
	}
	if md.Description != t.Description {
		update.Description = t.Description
		did = append(did, "updated description")
	}
	if (md.Clustering == nil || len(md.Clustering.Fields) == 0) && len(t.Clustering) > 0 {
		update.Clustering = &bq.Clustering{Fields: t.Clustering}
		did = append(did, "clustered by "+strings.Join(t.Clustering, ", "))
	}
	return update, did, notes
}

// mergeSchema returns the existing schema with the wanted descriptions and
// the missing columns added (as NULLABLE, the only way BigQuery adds them),
// the columns added and described, and notes on type mismatches.
func mergeSchema(have, want bq.Schema) (merged bq.Schema, added, described, notes []string) {
	existing := map[string]*bq.FieldSchema{}
	for _, f := range have {
		existing[f.Name] = f
	}
	merged = make(bq.Schema, 0, len(have)+len(want))
	for _, f := range have {
		c := *f
		for _, w := range want {
			if w.Name != f.Name {
				continue
			}
			if w.Type != f.Type {
				notes = append(notes, fmt.Sprintf("column %s is %s, want %s", f.Name, f.Type, w.Type))
			}
			if w.Description != f.Description {
				c.Description = w.Description
				described = append(described, f.Name)
			}
		}
		merged = append(merged, &c)
	}
	for _, w := range want {
		if _, ok := existing[w.Name]; !ok {
			c := *w
			c.Required = false // BigQuery adds columns as NULLABLE only
			merged = append(merged, &c)
			added = append(added, w.Name)
		}
	}
	return merged, added, described, notes
}
