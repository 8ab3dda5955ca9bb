package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of a problem document (RFC 9457 §3).
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document. Extra members go in Extensions
// and are written at the top level of the JSON object.
type Details struct {
	Type       string         `json:"type,omitempty"`     // URI reference; "about:blank" when empty
	Title      string         `json:"title"`              // short, stable summary of the type
	Status     int            `json:"status"`             // HTTP status code
	Detail     string         `json:"detail,omitempty"`   // human-readable explanation of this occurrence
	Instance   string         `json:"instance,omitempty"` // URI reference of this occurrence
	Extensions map[string]any `json:"-"`
}

// MarshalJSON flattens Extensions into the object (RFC 9457 §3.2).
func (d Details) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(d.Extensions)+5)
	for k, v := range d.Extensions {
		m[k] = v
	}
	if d.Type != "" {
		m["type"] = d.Type
	}
	m["title"] = d.Title
	m["status"] = d.Status
	if d.Detail != "" {
		m["detail"] = d.Detail
	}
	if d.Instance != "" {
		m["instance"] = d.Instance
	}
	return json.Marshal(m)
}

// Write sends d with its status code. The title defaults to the status text.
func Write(w http.ResponseWriter, d Details) {
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	body, err := json.Marshal(d)
	if err != nil { // only an unmarshalable extension can get here
		body = []byte(`{"title":"Internal Server Error","status":500}`)
		d.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_, _ = w.Write(body)
}

// Error writes a problem with only status and detail.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail})
}

// RetryAfter writes a problem with a Retry-After header in whole seconds
// (at least 1), as 429 and 503 responses should carry.
func RetryAfter(w http.ResponseWriter, status int, detail string, after time.Duration) {
	secs := int((after + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	Error(w, status, detail)
}
