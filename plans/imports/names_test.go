package imports

import (
	"reflect"
	"strings"
	"testing"
)

func TestHosts(t *testing.T) {
	g := func(name, addr string) Given { return Given{Name: name, SSHAddress: addr} }
	cases := []struct {
		name                   string
		directors, realservers []Given
		want                   []string // "name address director"
		err                    string
	}{
		{"default names", []Given{g("", "198.19.0.11"), g("", "lvs02.example.com"), g("", "10-1.example.com")}, []Given{g("web", "198.19.0.21"), g("", "198.19.0.22")},
			[]string{"director-1 198.19.0.11 true", "lvs02 lvs02.example.com true", "director-3 10-1.example.com true", "web 198.19.0.21 false", "realserver-2 198.19.0.22 false"}, ""},
		{"made unique", []Given{g("", "lvs.a.example"), g("", "lvs.b.example"), g("lvs-2", "198.19.0.13")}, nil,
			nil, `two hosts are named "lvs-2" (lvs.b.example and 198.19.0.13)`},
		{"unique suffixes", []Given{g("", "lvs.a.example"), g("", "lvs.b.example"), g("", "lvs.c.example")}, nil,
			[]string{"lvs lvs.a.example true", "lvs-2 lvs.b.example true", "lvs-3 lvs.c.example true"}, ""},
		{"a director as a realserver", []Given{g("lvs", "198.19.0.11")}, []Given{g("", "198.19.0.21"), g("", "198.19.0.11")},
			[]string{"lvs 198.19.0.11 true", "realserver-1 198.19.0.21 false"}, ""},
		{"a director named twice", []Given{g("lvs", "198.19.0.11")}, []Given{g("rs", "198.19.0.11")},
			nil, `198.19.0.11 is given as director "lvs" and as realserver "rs": a host has one name`},
		{"a director twice", []Given{g("", "198.19.0.11"), g("", "198.19.0.11")}, nil, nil, "198.19.0.11 is given twice"},
		{"a realserver twice", nil, []Given{g("", "198.19.0.21"), g("b", "198.19.0.21")}, nil, "198.19.0.21 is given twice"},
		{"a name twice", []Given{g("a", "198.19.0.11")}, []Given{g("a", "198.19.0.21")}, nil, `two hosts are named "a"`},
	}
	for _, c := range cases {
		hosts, err := Hosts(c.directors, c.realservers)
		var got []string
		for _, h := range hosts {
			got = append(got, strings.Join([]string{h.Name, h.SSHAddress, map[bool]string{true: "true", false: "false"}[h.Director]}, " "))
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) || c.err == "" && (err != nil || !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%s: %q, %v\nwant %q, %q", c.name, got, err, c.want, c.err)
		}
	}
}
