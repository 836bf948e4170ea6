package pubsubemu

import "testing"

func TestFilterExpressions(t *testing.T) {
	attrs := map[string]string{"kind": "sale", "store": "berlin-01", "test-run": "1"}
	cases := []struct {
		filter string
		want   bool
	}{
		{`attributes.kind = "sale"`, true},
		{`attributes.kind != "sale"`, false},
		{`attributes.missing != "x"`, true},
		{`attributes:kind`, true},
		{`attributes:missing`, false},
		{`attributes:test-run`, true},
		{`hasPrefix(attributes.store, "berlin")`, true},
		{`hasPrefix(attributes.store, "paris")`, false},
		{`NOT attributes:missing`, true},
		{`-attributes:kind`, false},
		{`attributes.kind = "sale" AND attributes.store = "paris"`, false},
		{`attributes.kind = "return" OR attributes.store = "berlin-01"`, true},
		{`(attributes.kind = "return" OR attributes:test-run) AND NOT hasPrefix(attributes.store, "x")`, true},
		{`attributes."kind" = "sale"`, true},
	}
	for _, c := range cases {
		f, err := parseFilter(c.filter)
		if err != nil {
			t.Errorf("parseFilter(%s): %v", c.filter, err)
			continue
		}
		if got := f.match(attrs); got != c.want {
			t.Errorf("%s = %v, want %v", c.filter, got, c.want)
		}
	}
	for _, bad := range []string{`attributes.kind = sale`, `attributes.kind ==`, `(attributes:kind`, `foo = "x"`, `attributes.kind = "x" AND`, `"unterminated`} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("parseFilter(%s) succeeded, want an error", bad)
		}
	}
}
