package addressbook

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
)

// maxBatchItems caps one POST /v1/contacts:batch.
const maxBatchItems = 500

// BatchRequest is the body of POST /v1/contacts:batch.
type BatchRequest struct {
	Items []BatchItem `json:"items"`
}

// BatchItem is one write. Op "upsert" creates when Version is 0 (ID
// optional) and replaces that version otherwise; "delete" needs ID and
// Version. Each item is atomic on its own; items do not depend on each other.
type BatchItem struct {
	Op      string        `json:"op"`
	ID      string        `json:"id,omitempty"`
	Version uint64        `json:"version,omitempty"`
	Contact *ContactInput `json:"contact,omitempty"`
}

// BatchResult reports one item with the status a single request would
// have had: 200, 201, 204, 400, 404, 409, 412 (with Current) or 413.
type BatchResult struct {
	Index   int          `json:"index"`
	ID      string       `json:"id,omitempty"`
	Status  int          `json:"status"`
	Version uint64       `json:"version,omitempty"`
	Error   string       `json:"error,omitempty"`
	Errors  []FieldError `json:"errors,omitempty"`
	Current *Contact     `json:"current,omitempty"`
}

// BatchResponse is the body of a batch answer (always 200 once parsed).
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

func (s *Service) handleBatch(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	var req BatchRequest
	if !decodeJSON(w, r, &req, s.cfg.MaxBodyBytes) {
		return
	}
	if len(req.Items) > maxBatchItems {
		tooLarge(w, fmt.Sprintf("at most %d items per batch", maxBatchItems))
		return
	}
	resp := BatchResponse{Results: make([]BatchResult, 0, len(req.Items))}
	for i, it := range req.Items {
		if err := r.Context().Err(); err != nil {
			s.fail(w, r, err)
			return
		}
		res := s.batchItem(r, user, it)
		res.Index = i
		resp.Results = append(resp.Results, res)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) batchItem(r *http.Request, user string, it BatchItem) BatchResult {
	res := BatchResult{ID: it.ID}
	bad := func(status int, msg string) BatchResult {
		res.Status, res.Error = status, msg
		return res
	}
	var op store.ContactOp
	switch it.Op {
	case "upsert":
		if it.Contact == nil {
			return bad(http.StatusBadRequest, "upsert needs a contact")
		}
		c, err := s.norm.normalize(*it.Contact)
		var ve *ValidationError
		if errors.As(err, &ve) {
			res.Errors = ve.Fields
			if ve.PhotoLarge {
				return bad(http.StatusRequestEntityTooLarge, "photo too large")
			}
			return bad(http.StatusBadRequest, "invalid contact")
		}
		if it.ID == "" {
			it.ID = it.Contact.ID
		}
		switch {
		case it.ID == "" && it.Version == 0:
			it.ID = newID()
		case !validID(it.ID):
			return bad(http.StatusBadRequest, "invalid id")
		}
		c.ID = it.ID
		if it.Version > 0 {
			s.keepExtra(r.Context(), user, &c, it.Version)
		}
		op = store.ContactOp{Contact: c, Expect: it.Version}
	case "delete":
		if !validID(it.ID) || it.Version == 0 {
			return bad(http.StatusBadRequest, "delete needs id and version")
		}
		op = store.ContactOp{Delete: true, Contact: store.Contact{ID: it.ID}, Expect: it.Version}
	default:
		return bad(http.StatusBadRequest, `op must be "upsert" or "delete"`)
	}
	res.ID = op.Contact.ID
	out, err := s.contacts.Apply(r.Context(), user, []store.ContactOp{op}, s.cfg.MaxContacts)
	switch {
	case err == nil:
		res.Version = out[0].Version
		switch {
		case op.Delete:
			res.Status = http.StatusNoContent
		case op.Expect == 0:
			res.Status = http.StatusCreated
		default:
			res.Status = http.StatusOK
		}
	case errors.Is(err, store.ErrConflict):
		s.metrics.conflicts.Inc()
		res.Status, res.Error = http.StatusPreconditionFailed, "version mismatch"
		if cur, gerr := s.contacts.Get(r.Context(), user, res.ID); gerr == nil && !cur.Deleted {
			v := s.view(r.Context(), user, &cur)
			res.Current, res.Version = &v, cur.Version
		}
	case errors.Is(err, store.ErrNotFound):
		return bad(http.StatusNotFound, "no such contact")
	case errors.Is(err, store.ErrExists):
		return bad(http.StatusConflict, "a contact with this id exists")
	case errors.Is(err, store.ErrContactLimit):
		return bad(http.StatusConflict, fmt.Sprintf("contact limit %d reached", s.cfg.MaxContacts))
	default:
		s.log.Error("batch item failed", zap.Error(err))
		return bad(http.StatusInternalServerError, "internal error")
	}
	return res
}
