package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Our slog handler: JSON lines appended into pooled buffers, without
// reflection for the usual attribute kinds. Attributes from WithAttrs are
// encoded once, when the logger is made; every line gets the request
// context's request_id and trace_id the same way, whichever file logs it.

// jsonHandler writes one JSON object per record.
type jsonHandler struct {
	out     *lineWriter
	level   slog.Leveler
	pre     []byte   // encoded WithAttrs attributes (and the groups they are in), each followed by ','
	open    int      // groups opened in pre, closed at the end of every line
	pending []string // groups named by WithGroup with no attribute yet: written only if one comes
}

func newJSONHandler(out *lineWriter, level slog.Leveler) *jsonHandler {
	return &jsonHandler{out: out, level: level}
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	buf := append([]byte(nil), h.pre...)
	buf = openGroups(buf, h.pending)
	wroteAny := false
	for _, a := range as {
		var ok bool
		if buf, ok = appendAttr(buf, a); ok {
			wroteAny = true
		}
	}
	if !wroteAny {
		return h // only empty attributes: the pending groups stay pending
	}
	h2.pre, h2.open, h2.pending = buf, h.open+len(h.pending), nil
	return &h2
}

func (h *jsonHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.pending = append(append([]string(nil), h.pending...), name)
	return &h2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	l := h.begin(ctx, r.Time, r.Level, r.Message)
	buf := l.buf
	r.Attrs(func(a slog.Attr) bool {
		buf, _ = appendAttr(buf, a)
		return true
	})
	l.buf = buf
	return h.finish(l)
}

// handleAttrs writes the same line as Handle would for a record of as. The
// access log builds its line this way: a slog.Record holds five attributes
// before it allocates, and the access line has more.
func (h *jsonHandler) handleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, as []slog.Attr) error {
	l := h.begin(ctx, t, level, msg)
	for _, a := range as {
		l.buf, _ = appendAttr(l.buf, a)
	}
	return h.finish(l)
}

// line is a log line being written into a pooled buffer.
type line struct {
	pooled *[]byte
	buf    []byte
	mark   int // where the groups named by WithGroup and not yet written start
	opened int // where the record's own attributes start
}

// begin starts a line: time, level, message, the request's ids from the
// context, the attributes from WithAttrs, and the pending groups.
func (h *jsonHandler) begin(ctx context.Context, t time.Time, level slog.Level, msg string) line {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	buf = append(buf, '{')
	if !t.IsZero() {
		buf = append(buf, `"time":"`...)
		buf = appendTimeUTC(buf, t)
		buf = append(buf, `",`...)
	}
	buf = append(buf, `"level":"`...)
	buf = append(buf, level.String()...)
	buf = append(buf, `","msg":`...)
	buf = appendString(buf, msg)
	buf = append(buf, ',')
	if st := stateFrom(ctx); st != nil {
		buf = append(buf, `"request_id":`...)
		buf = appendString(buf, st.id)
		buf = append(buf, ',')
		if st.traceID != "" {
			buf = append(buf, `"trace_id":`...)
			buf = appendString(buf, st.traceID)
			buf = append(buf, ',')
		}
	}
	buf = append(buf, h.pre...)
	mark := len(buf)
	buf = openGroups(buf, h.pending)
	return line{pooled: bp, buf: buf, mark: mark, opened: len(buf)}
}

// finish closes the line and writes it. The pending groups stay only if an
// attribute was written after them.
func (h *jsonHandler) finish(l line) error {
	buf, open := l.buf, h.open
	if len(buf) > l.opened {
		open += len(h.pending)
	} else {
		buf = buf[:l.mark] // no attribute wrote anything: the pending groups are not written
	}
	buf = closeObject(buf, open)
	buf = append(buf, '\n')
	_, err := h.out.Write(buf)
	*l.pooled = buf
	bufPool.Put(l.pooled)
	return err
}

func openGroups(buf []byte, names []string) []byte {
	for _, g := range names {
		buf = appendString(buf, g)
		buf = append(buf, ":{"...)
	}
	return buf
}

// closeObject ends the line's object: the trailing comma of the last
// attribute goes, and each open group is closed.
func closeObject(buf []byte, open int) []byte {
	if buf[len(buf)-1] == ',' {
		buf = buf[:len(buf)-1]
	}
	for range open {
		buf = append(buf, '}')
	}
	return append(buf, '}')
}

// appendAttr writes `"key":value,` and reports whether it wrote anything:
// an empty attribute, or a group with no attributes, writes nothing; a
// group with an empty key is written inline.
func appendAttr(buf []byte, a slog.Attr) ([]byte, bool) {
	v := a.Value
	k := v.Kind()
	switch k {
	case slog.KindAny:
		if a.Key == "" && v.Any() == nil {
			return buf, false
		}
	case slog.KindLogValuer:
		v = v.Resolve()
		if k = v.Kind(); k == slog.KindGroup || k == slog.KindAny {
			return appendAttr(buf, slog.Attr{Key: a.Key, Value: v})
		}
	case slog.KindGroup:
		return appendGroup(buf, a.Key, v.Group())
	case slog.KindString: // most attributes: key and value usually need no escaping
		if s := v.String(); safePrefix(a.Key) == len(a.Key) && safePrefix(s) == len(s) {
			buf = append(buf, '"')
			buf = append(buf, a.Key...)
			buf = append(buf, `":"`...)
			buf = append(buf, s...)
			return append(buf, '"', ','), true
		}
	}
	buf = appendKey(buf, a.Key)
	return append(appendValue(buf, k, v), ','), true
}

func appendGroup(buf []byte, key string, as []slog.Attr) ([]byte, bool) {
	if len(as) == 0 {
		return buf, false
	}
	mark := len(buf)
	if key != "" {
		buf = appendString(buf, key)
		buf = append(buf, ":{"...)
	}
	wrote := false
	for _, ga := range as {
		var ok bool
		buf, ok = appendAttr(buf, ga)
		wrote = wrote || ok
	}
	if !wrote {
		return buf[:mark], false
	}
	if key != "" {
		buf[len(buf)-1] = '}' // replaces the last attribute's comma
		buf = append(buf, ',')
	}
	return buf, true
}

// appendKey writes `"key":`.
func appendKey(buf []byte, key string) []byte {
	if safePrefix(key) == len(key) {
		buf = append(buf, '"')
		buf = append(buf, key...)
		return append(buf, '"', ':')
	}
	return append(appendString(buf, key), ':')
}

func appendValue(buf []byte, k slog.Kind, v slog.Value) []byte {
	switch k {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindInt64:
		return appendInt(buf, v.Int64())
	case slog.KindUint64:
		return appendUint(buf, v.Uint64())
	case slog.KindFloat64:
		return appendFloat(buf, v.Float64())
	case slog.KindBool:
		return strconv.AppendBool(buf, v.Bool())
	case slog.KindDuration:
		return appendInt(buf, int64(v.Duration()))
	case slog.KindTime:
		buf = append(buf, '"')
		buf = v.Time().AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	}
	switch x := v.Any().(type) {
	case error:
		return appendString(buf, x.Error())
	case []string:
		buf = append(buf, '[')
		for i, s := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, s)
		}
		return append(buf, ']')
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return appendString(buf, "!ERROR: "+err.Error())
		}
		return append(buf, b...)
	}
}

const hexDigits = "0123456789abcdef"

// appendTimeUTC writes t as RFC 3339 in UTC with microseconds
// (2026-11-27T06:01:02.345678Z). The part up to the second is formatted
// once a second and kept from the last line, which was almost always in
// the same second; a line writes only its microseconds, by hand (time.Format
// on every line would be a quarter of its cost).
func appendTimeUTC(buf []byte, t time.Time) []byte {
	sec := t.Unix()
	p := lastSecond.Load()
	if p == nil || p.unix != sec {
		p = newSecondPrefix(t, sec)
		lastSecond.Store(p)
	}
	buf = append(buf, p.text[:]...)
	us := uint(t.Nanosecond()) / 1000
	a, b, c := us/10000*2, us/100%100*2, us%100*2
	return append(buf, digitPairs[a], digitPairs[a+1], digitPairs[b], digitPairs[b+1], digitPairs[c], digitPairs[c+1], 'Z')
}

// secondPrefix is one second's "2026-11-27T06:01:02.".
type secondPrefix struct {
	unix int64
	text [20]byte
}

var lastSecond atomic.Pointer[secondPrefix]

func newSecondPrefix(t time.Time, sec int64) *secondPrefix {
	p := &secondPrefix{unix: sec}
	copy(p.text[:], t.UTC().AppendFormat(nil, "2006-01-02T15:04:05."))
	return p
}

// appendFloat writes f in strconv's shortest 'g' form. A value that is a
// whole number of thousandths between 0.001 and a million (duration_ms on
// every access line is one) takes a shortcut worth a tenth of a line: its
// shortest form is those thousandths, trailing zeros trimmed, because any
// other decimal with at most three decimals is 0.001 away, a hundred
// million float steps at that size.
func appendFloat(buf []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendString(buf, strconv.FormatFloat(f, 'g', -1, 64)) // JSON has no such numbers
	}
	a := math.Abs(f)
	if a < 0.001 || a >= 1e6 {
		return strconv.AppendFloat(buf, f, 'g', -1, 64)
	}
	n := math.Round(a * 1000)
	if n/1000 != a {
		return strconv.AppendFloat(buf, f, 'g', -1, 64)
	}
	if f < 0 {
		buf = append(buf, '-')
	}
	m := int64(n)
	buf = appendUint(buf, uint64(m/1000))
	frac := int(m % 1000)
	if frac == 0 {
		return buf
	}
	r := frac % 100 * 2 // frac is 1 to 999: three digits, trailing zeros dropped
	switch {
	case frac%100 == 0:
		return append(buf, '.', byte('0'+frac/100))
	case frac%10 == 0:
		return append(buf, '.', byte('0'+frac/100), digitPairs[r])
	}
	return append(buf, '.', byte('0'+frac/100), digitPairs[r], digitPairs[r+1])
}

// appendInt and appendUint write n in decimal, two digits at a time, as
// strconv does; without its general base handling they take a third of the
// time for the small numbers of a log line.
func appendInt(buf []byte, n int64) []byte {
	if n < 0 {
		return appendUint(append(buf, '-'), uint64(-n)) // the minimum wraps to its own magnitude
	}
	return appendUint(buf, uint64(n))
}

func appendUint(buf []byte, n uint64) []byte {
	switch { // a log line's numbers are mostly small: statuses, sizes, milliseconds
	case n < 10:
		return append(buf, byte('0'+n))
	case n < 100:
		return append(buf, digitPairs[n*2], digitPairs[n*2+1])
	case n < 1000:
		r := n % 100 * 2
		return append(buf, byte('0'+n/100), digitPairs[r], digitPairs[r+1])
	case n < 10000:
		q, r := n/100*2, n%100*2
		return append(buf, digitPairs[q], digitPairs[q+1], digitPairs[r], digitPairs[r+1])
	}
	var d [20]byte
	i := len(d)
	for n >= 100 {
		q := n / 100
		r := (n - q*100) * 2
		i -= 2
		d[i], d[i+1] = digitPairs[r], digitPairs[r+1]
		n = q
	}
	if n >= 10 {
		i -= 2
		d[i], d[i+1] = digitPairs[n*2], digitPairs[n*2+1]
	} else {
		i--
		d[i] = byte('0' + n)
	}
	return append(buf, d[i:]...)
}

// digitPairs is "00" to "99" back to back.
const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// jsonSafe marks the ASCII bytes a JSON string may hold as they are; every
// byte of a multi-byte character is false, and takes the careful path.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string, escaped as encoding/json does:
// quotes, backslashes and control characters; <, > and & for safe HTML
// embedding; U+2028 and U+2029, which some JavaScript parsers take for line
// ends; invalid UTF-8 as U+FFFD.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	i := safePrefix(s)
	if i == len(s) {
		buf = append(buf, s...)
		return append(buf, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// safePrefix is how many leading bytes of s need no escaping. Most strings
// in a log line are short ASCII with nothing to escape, so it tests eight
// bytes at once (see wordNeedsEscape): a string of 8 or more bytes word by
// word, its tail as the last eight bytes (overlapping the word before), and
// a string of 4 to 7 bytes as its first and last four. Only a word that
// holds something to escape is looked at byte by byte, to find where.
func safePrefix(s string) int {
	n, i := len(s), 0
	switch {
	case n >= 8:
		for ; i+8 <= n; i += 8 {
			if wordNeedsEscape(load64(s[i:])) {
				return i + safeBytes(s[i:])
			}
		}
		if i == n || !wordNeedsEscape(load64(s[n-8:])) {
			return n
		}
	case n >= 4:
		if !wordNeedsEscape(uint64(load32(s)) | uint64(load32(s[n-4:]))<<32) {
			return n
		}
	}
	return i + safeBytes(s[i:])
}

// safeBytes is safePrefix one byte at a time.
func safeBytes(s string) int {
	i := 0
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	return i
}

// wordNeedsEscape reports whether any of the eight bytes of x needs
// escaping: a multi-byte character (its high bit), a control character, '"',
// '&', '<', '>' or '\\'. Each test subtracts from every byte at once and
// looks at the high bits: a byte that drops below zero sets its own. Once no
// byte has its high bit set, no subtraction can borrow into a byte except
// from a byte below it that already counted, so "any" is exact.
func wordNeedsEscape(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quoteAmp := x | 0x04*ones ^ 0x26*ones // '"' (0x22) or '&' (0x26) become 0
	angle := x | 0x02*ones ^ 0x3e*ones    // '<' (0x3c) or '>' (0x3e) become 0
	slash := x ^ 0x5c*ones                // '\\' becomes 0
	return (x|(x-0x20*ones)|(quoteAmp-ones)|(angle-ones)|(slash-ones))&highs != 0
}

// load64 and load32 read the first bytes of s as a little-endian word (the
// compiler makes each one load).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// lineWriter writes whole lines, one at a time, so lines from concurrent
// requests never interleave. Buffered, it costs one system call per
// buffer-full instead of one per line; a background flush every
// logFlushInterval bounds how late a line can be, and Close flushes the rest.
type lineWriter struct {
	mu   sync.Mutex
	w    io.Writer
	buf  *bufio.Writer // nil: unbuffered
	stop chan struct{}
	done chan struct{}
}

const logFlushInterval = 100 * time.Millisecond

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

// newBufferedLineWriter buffers up to 64 KiB and flushes every interval
// until Close.
func newBufferedLineWriter(w io.Writer, interval time.Duration) *lineWriter {
	lw := &lineWriter{w: w, buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(lw.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-lw.stop:
				return
			case <-t.C:
				lw.Flush()
			}
		}
	}()
	return lw
}

func (lw *lineWriter) Write(line []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.buf == nil {
		return lw.w.Write(line)
	}
	if lw.buf.Available() < len(line) && lw.buf.Buffered() > 0 {
		if err := lw.buf.Flush(); err != nil {
			return 0, err
		}
	}
	return lw.buf.Write(line) // a line longer than the buffer goes straight through
}

func (lw *lineWriter) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.buf == nil {
		return nil
	}
	return lw.buf.Flush()
}

// Close stops the background flush and writes what is buffered.
func (lw *lineWriter) Close() error {
	if lw.stop != nil {
		close(lw.stop)
		<-lw.done
		lw.stop = nil
	}
	return lw.Flush()
}

// newLogger writes JSON lines at the given level, one write per line.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(newJSONHandler(newLineWriter(w), level))
}
