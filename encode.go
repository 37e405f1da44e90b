package main

import (
	"strconv"
	"time"
)

// Append-based JSON for the hot response types, byte for byte what
// encoding/json writes (proven by encode_test.go): encoding/json would
// reflect over each struct and run every time.Time through MarshalJSON and
// then re-validate its output, a quarter of a list request's CPU.

// jsonAppender is a type that writes its own JSON; writeJSON uses it.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendNullableString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func (it item) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, it.ID)
	b = append(b, `,"title":`...)
	b = appendString(b, it.Title)
	b = append(b, `,"description":`...)
	b = appendNullableString(b, it.Description)
	b = append(b, `,"owner_id":`...)
	b = appendString(b, it.OwnerID)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, it.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, it.UpdatedAt)
	return append(b, '}')
}

func (u user) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, u.ID)
	b = append(b, `,"email":`...)
	b = appendString(b, u.Email)
	b = append(b, `,"full_name":`...)
	b = appendNullableString(b, u.FullName)
	b = append(b, `,"is_active":`...)
	b = strconv.AppendBool(b, u.IsActive)
	b = append(b, `,"is_superuser":`...)
	b = strconv.AppendBool(b, u.IsSuperuser)
	b = append(b, `,"email_verified":`...)
	b = strconv.AppendBool(b, u.EmailVerified)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, u.CreatedAt)
	return append(b, '}')
}

// appendJSON writes a page of items or users (appends says which pages
// may call it).
func (p listPage[T]) appendJSON(b []byte) []byte {
	b = append(b, `{"data":`...)
	switch data := any(p.Data).(type) {
	case []item:
		b = appendJSONArray(b, data)
	case []user:
		b = appendJSONArray(b, data)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(p.Count), 10)
	return append(b, '}')
}

// appendJSONArray writes data as a JSON array of its elements' own JSON.
func appendJSONArray[T jsonAppender](b []byte, data []T) []byte {
	b = append(b, '[')
	for i, v := range data {
		if i > 0 {
			b = append(b, ',')
		}
		b = v.appendJSON(b)
	}
	return append(b, ']')
}

// appends reports whether v can write its own JSON: a page only when its
// element type can.
func appends(v any) (jsonAppender, bool) {
	switch p := v.(type) {
	case listPage[item], listPage[user]:
		return p.(jsonAppender), true
	case item, user:
		return p.(jsonAppender), true
	}
	return nil, false
}
