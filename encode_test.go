package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// randomText mixes what JSON must escape with ordinary text.
func randomText(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", " ", `"`, `\`, "<", ">", "&", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "\u2028", "\u2029", "é", "☃", "𝄞", "\xff", "\xc3"}
	var b []byte
	for range r.IntN(30) {
		b = append(b, alphabet[r.IntN(len(alphabet))]...)
	}
	return string(b)
}

func randomTime(r *rand.Rand) time.Time {
	return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC().Truncate(time.Duration(1+r.IntN(3)) * time.Microsecond)
}

// The hand-written encoders write exactly what encoding/json writes, for
// random items, users and pages (strings with escapes and invalid UTF-8,
// null and set optionals, any time).
func TestAppendEncodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var desc, name *string
		if r.IntN(2) == 0 {
			s := randomText(r)
			desc = &s
		}
		if r.IntN(2) == 0 {
			s := randomText(r)
			name = &s
		}
		it := item{ID: randomText(r), Title: randomText(r), Description: desc, OwnerID: randomText(r), CreatedAt: randomTime(r), UpdatedAt: randomTime(r)}
		u := user{ID: randomText(r), Email: randomText(r), FullName: name, IsActive: r.IntN(2) == 0, IsSuperuser: r.IntN(2) == 0, EmailVerified: r.IntN(2) == 0, CreatedAt: randomTime(r)}
		next := randomText(r)
		for _, v := range []any{it, u, listPage[item]{Data: []item{it, it}, Count: r.IntN(1000)}, listPage[item]{Data: []item{}, Count: 0},
			listPage[user]{Data: []user{u}, Count: 1, NextCursor: &next}, listPage[item]{Data: []item{it}, Count: 10_000, CountCapped: true, NextCursor: &next}} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			a, ok := appends(v)
			if !ok {
				t.Fatalf("%T does not append", v)
			}
			if got := a.appendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("%T:\n got %s\nwant %s", v, got, want)
			}
		}
	}
}

func BenchmarkEncodeItemPage(b *testing.B) {
	page := listPage[item]{Count: 60}
	d := "a description"
	for i := range 20 {
		page.Data = append(page.Data, item{ID: "0f8e7d6c-5b4a-4938-8271-6a5b4c3d2e1f", Title: "item " + string(rune('a'+i)), Description: &d,
			OwnerID: "7b0c6a52-3e4f-4c1b-9a0e-2f5d8c9b1a23", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()})
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 8192)
		for b.Loop() {
			buf = page.appendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(page)
		}
	})
}

// appendString writes the bytes encoding/json writes for any string.
func FuzzAppendStringIsEncodingJSON(f *testing.F) {
	for _, s := range []string{"plain", `quo"te`, "back\\slash", "nl\nline", "\x00\x01\x1f", "\xff\xfe invalid", "\u2028\u2029", "<script>&", "é☃𝄞", "\ufffd", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}
