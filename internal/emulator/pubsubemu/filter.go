package pubsubemu

import (
	"fmt"
	"strconv"
	"strings"
)

// filterExpr is a parsed subscription filter on message attributes:
//
//	attributes.KEY = "v"   attributes.KEY != "v"   attributes:KEY
//	hasPrefix(attributes.KEY, "p")   NOT x   -x   x AND y   x OR y   (x)
type filterExpr struct {
	op   string // "and", "or", "not", "has", "eq", "ne", "prefix"
	kids []*filterExpr
	key  string
	val  string
}

func (f *filterExpr) match(attrs map[string]string) bool {
	switch f.op {
	case "and":
		for _, k := range f.kids {
			if !k.match(attrs) {
				return false
			}
		}
		return true
	case "or":
		for _, k := range f.kids {
			if k.match(attrs) {
				return true
			}
		}
		return false
	case "not":
		return !f.kids[0].match(attrs)
	case "has":
		_, ok := attrs[f.key]
		return ok
	case "eq":
		v, ok := attrs[f.key]
		return ok && v == f.val
	case "ne":
		v, ok := attrs[f.key]
		return !ok || v != f.val
	case "prefix":
		v, ok := attrs[f.key]
		return ok && strings.HasPrefix(v, f.val)
	}
	return false
}

type filterParser struct {
	toks []string
	pos  int
}

func parseFilter(src string) (*filterExpr, error) {
	toks, err := tokenizeFilter(src)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return e, nil
}

func tokenizeFilter(src string) ([]string, error) {
	var toks []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, src[i:j+1])
			i = j + 1
		case c == '!' && i+1 < len(src) && src[i+1] == '=':
			toks = append(toks, "!=")
			i += 2
		case strings.IndexByte("()=:,.-", c) >= 0:
			toks = append(toks, string(c))
			i++
		case isIdentByte(c):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			toks = append(toks, src[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *filterParser) expect(t string) error {
	if got := p.next(); got != t {
		return fmt.Errorf("want %q, got %q", t, got)
	}
	return nil
}

func (p *filterParser) expr() (*filterExpr, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != "AND" && op != "OR" {
			return left, nil
		}
		p.next()
		right, err := p.term()
		if err != nil {
			return nil, err
		}
		kind := strings.ToLower(op)
		if left.op == kind {
			left.kids = append(left.kids, right)
		} else {
			left = &filterExpr{op: kind, kids: []*filterExpr{left, right}}
		}
	}
}

func (p *filterParser) term() (*filterExpr, error) {
	if t := p.peek(); t == "NOT" || t == "-" {
		p.next()
		e, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &filterExpr{op: "not", kids: []*filterExpr{e}}, nil
	}
	return p.factor()
}

func (p *filterParser) factor() (*filterExpr, error) {
	switch t := p.next(); t {
	case "(":
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	case "hasPrefix":
		if err := p.expect("("); err != nil {
			return nil, err
		}
		key, err := p.attrKey()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		val, err := p.str()
		if err != nil {
			return nil, err
		}
		return &filterExpr{op: "prefix", key: key, val: val}, p.expect(")")
	case "attributes":
		p.pos--
		if p.pos+1 < len(p.toks) && p.toks[p.pos+1] == ":" {
			p.pos += 2
			key, err := p.keyName()
			if err != nil {
				return nil, err
			}
			return &filterExpr{op: "has", key: key}, nil
		}
		key, err := p.attrKey()
		if err != nil {
			return nil, err
		}
		op := p.next()
		if op != "=" && op != "!=" {
			return nil, fmt.Errorf("want = or != after attributes.%s, got %q", key, op)
		}
		val, err := p.str()
		if err != nil {
			return nil, err
		}
		if op == "=" {
			return &filterExpr{op: "eq", key: key, val: val}, nil
		}
		return &filterExpr{op: "ne", key: key, val: val}, nil
	default:
		return nil, fmt.Errorf("unexpected %q", t)
	}
}

func (p *filterParser) attrKey() (string, error) {
	if err := p.expect("attributes"); err != nil {
		return "", err
	}
	if err := p.expect("."); err != nil {
		return "", err
	}
	return p.keyName()
}

func (p *filterParser) keyName() (string, error) {
	t := p.peek()
	if strings.HasPrefix(t, `"`) {
		return p.str()
	}
	// Keys may contain '-' and '.', which tokenize separately.
	var b strings.Builder
	for {
		t := p.peek()
		if t == "" || !(isIdentByte(t[0]) || t == "-") || t == "AND" || t == "OR" {
			break
		}
		b.WriteString(p.next())
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("missing attribute key")
	}
	return b.String(), nil
}

func (p *filterParser) str() (string, error) {
	t := p.next()
	if !strings.HasPrefix(t, `"`) {
		return "", fmt.Errorf("want a quoted string, got %q", t)
	}
	s, err := strconv.Unquote(t)
	if err != nil {
		return "", fmt.Errorf("bad string %s: %w", t, err)
	}
	return s, nil
}
