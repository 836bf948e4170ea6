package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// readOnlyStarts are the statements `inventory sql` runs: queries, and
// statements that describe.
var readOnlyStarts = map[string]bool{
	"SELECT": true, "WITH": true, "FROM": true, "VALUES": true, "TABLE": true,
	"DESCRIBE": true, "DESC": true, "SHOW": true, "EXPLAIN": true, "SUMMARIZE": true,
}

// writeWords are keywords of statements that change a database or files,
// refused anywhere in the text (outside literals and quoted names), so that
// neither a WITH nor an EXPLAIN ANALYZE carries one in.
var writeWords = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "MERGE": true, "UPSERT": true,
	"CREATE": true, "DROP": true, "ALTER": true, "TRUNCATE": true, "RENAME": true,
	"COPY": true, "EXPORT": true, "IMPORT": true, "ATTACH": true, "DETACH": true,
	"INSTALL": true, "LOAD": true, "PRAGMA": true, "SET": true, "RESET": true,
	"CALL": true, "EXECUTE": true, "PREPARE": true, "CHECKPOINT": true, "VACUUM": true,
	"GRANT": true, "REVOKE": true, "USE": true, "BEGIN": true, "COMMIT": true, "ROLLBACK": true,
}

// checkReadOnly refuses SQL that is not a single read-only statement; bq
// says the SQL is BigQuery's (backticks quote names), not DuckDB's.
func checkReadOnly(q string, bq bool) error {
	stmts := sqlStatements(q, bq)
	if len(stmts) == 0 {
		return fmt.Errorf("sql: the query is empty")
	}
	if len(stmts) > 1 {
		return fmt.Errorf("sql: one statement at a time (got %d)", len(stmts))
	}
	words := stmts[0]
	if !readOnlyStarts[words[0]] {
		return fmt.Errorf("sql: %s: only queries run here (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, EXPLAIN); the warehouse is read-only", words[0])
	}
	for _, w := range words {
		if writeWords[w] {
			return fmt.Errorf("sql: %s is refused: the warehouse is read-only here", w)
		}
	}
	return nil
}

// sqlStatements returns the words (upper-cased) of each non-empty statement
// of q, skipping string literals, quoted identifiers and comments. Where it
// is unsure it sees more words, never fewer: a refusal too many, not a
// statement let through.
func sqlStatements(q string, bq bool) [][]string {
	var out [][]string
	var cur []string
	r := []rune(q)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == ';':
			flush()
		case c == '\'' || c == '"' || bq && c == '`':
			// A literal or quoted name, with doubled quotes inside.
			for i++; i < len(r); i++ {
				if r[i] == c {
					if i+1 < len(r) && r[i+1] == c {
						i++
						continue
					}
					break
				}
			}
		case c == '-' && i+1 < len(r) && r[i+1] == '-':
			for i < len(r) && r[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(r) && r[i+1] == '*':
			for i += 2; i+1 < len(r) && (r[i] != '*' || r[i+1] != '/'); i++ {
			}
			i++
		case unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_' || r[j] == '$') {
				j++
			}
			cur = append(cur, strings.ToUpper(string(r[i:j])))
			i = j - 1
		case unicode.IsDigit(c):
			for i+1 < len(r) && (unicode.IsLetter(r[i+1]) || unicode.IsDigit(r[i+1]) || r[i+1] == '.') {
				i++
			}
		}
	}
	flush()
	return out
}

// checkWarehouseDir refuses a local warehouse that is not there, rather
// than querying empty views over it.
func checkWarehouseDir(uri string) error {
	if strings.HasPrefix(uri, "bq://") {
		return nil
	}
	fi, err := os.Stat(uri)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("sql: warehouse %q: no such directory (pass --warehouse; `inventory setup`, `up` or `demo` make one)", uri)
	}
	for _, t := range warehouse.Tables {
		if _, err := os.Stat(filepath.Join(uri, t.Name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("sql: %q is not a warehouse: it has none of the tables' directories (adjustments, stock_levels, ...)", uri)
}
