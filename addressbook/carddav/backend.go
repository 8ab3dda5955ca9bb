package carddav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"

	govcard "github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	gocarddav "github.com/emersion/go-webdav/carddav"
	"go.uber.org/zap"

	"github.com/convergo/convergo/addressbook/vcard"
	"github.com/convergo/convergo/store"
)

// davBackend is the go-webdav CardDAV backend: one address book per user,
// its objects are the user's contacts.
type davBackend struct{ h *Handler }

var _ gocarddav.Backend = (*davBackend)(nil)

func httpErr(code int, format string, args ...any) error {
	return webdav.NewHTTPError(code, fmt.Errorf(format, args...))
}

func (b *davBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return b.h.principal(userFrom(ctx)), nil
}

func (b *davBackend) AddressBookHomeSetPath(ctx context.Context) (string, error) {
	return b.h.homeSet(userFrom(ctx)), nil
}

func (b *davBackend) addressBook(user string) gocarddav.AddressBook {
	return gocarddav.AddressBook{
		Path:            b.h.bookPath(user),
		Name:            b.h.cfg.BookName,
		Description:     "convergo network address book",
		MaxResourceSize: b.h.cfg.MaxCardBytes,
		SupportedAddressData: []gocarddav.AddressDataType{
			{ContentType: govcard.MIMEType, Version: vcard.V3},
			{ContentType: govcard.MIMEType, Version: vcard.V4},
		},
	}
}

func (b *davBackend) ListAddressBooks(ctx context.Context) ([]gocarddav.AddressBook, error) {
	return []gocarddav.AddressBook{b.addressBook(userFrom(ctx))}, nil
}

func (b *davBackend) GetAddressBook(ctx context.Context, p string) (*gocarddav.AddressBook, error) {
	ab := b.addressBook(userFrom(ctx))
	if path.Clean(p) != path.Clean(ab.Path) {
		return nil, httpErr(http.StatusNotFound, "no address book at %s", p)
	}
	return &ab, nil
}

func (b *davBackend) CreateAddressBook(context.Context, *gocarddav.AddressBook) error {
	return httpErr(http.StatusForbidden, "every user has exactly one address book")
}

func (b *davBackend) DeleteAddressBook(context.Context, string) error {
	return httpErr(http.StatusForbidden, "the address book cannot be deleted")
}

// object is the CardDAV form of a contact: served as vCard 3.0, the
// version every client reads; ETag = version, as in the REST API.
func (b *davBackend) object(user string, c *store.Contact) gocarddav.AddressObject {
	return gocarddav.AddressObject{
		Path:    b.h.objectPath(user, c.ID),
		ModTime: c.Updated,
		ETag:    strconv.FormatUint(c.Version, 10),
		Card:    vcard.ToCard(*c, vcard.V3),
	}
}

func (b *davBackend) GetAddressObject(ctx context.Context, p string, _ *gocarddav.AddressDataRequest) (*gocarddav.AddressObject, error) {
	user := userFrom(ctx)
	id, ok := b.h.objectID(user, p)
	if !ok {
		return nil, httpErr(http.StatusNotFound, "no card at %s", p)
	}
	c, err := b.h.book.Get(ctx, user, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Deleted) {
		return nil, httpErr(http.StatusNotFound, "no card at %s", p)
	}
	if err != nil {
		return nil, b.internal(err)
	}
	ao := b.object(user, &c)
	var buf bytes.Buffer // the length go-webdav's encoder will write
	if err := govcard.NewEncoder(&buf).Encode(ao.Card); err == nil {
		ao.ContentLength = int64(buf.Len())
	}
	return &ao, nil
}

func (b *davBackend) ListAddressObjects(ctx context.Context, _ string, _ *gocarddav.AddressDataRequest) ([]gocarddav.AddressObject, error) {
	user := userFrom(ctx)
	cs, _, err := b.h.book.Snapshot(ctx, user)
	if err != nil {
		return nil, b.internal(err)
	}
	out := make([]gocarddav.AddressObject, 0, len(cs))
	for i := range cs {
		out = append(out, b.object(user, &cs[i]))
	}
	return out, nil
}

func (b *davBackend) QueryAddressObjects(ctx context.Context, p string, q *gocarddav.AddressBookQuery) ([]gocarddav.AddressObject, error) {
	all, err := b.ListAddressObjects(ctx, p, &q.DataRequest)
	if err != nil {
		return nil, err
	}
	return gocarddav.Filter(q, all)
}

// PutAddressObject stores a card under the ID its path names. If-None-Match: *
// creates only; If-Match names the version replaced; with neither the
// card replaces whatever is there (plain HTTP PUT semantics).
func (b *davBackend) PutAddressObject(ctx context.Context, p string, card govcard.Card, opts *gocarddav.PutAddressObjectOptions) (*gocarddav.AddressObject, error) {
	user := userFrom(ctx)
	id, ok := b.h.objectID(user, p)
	if !ok {
		return nil, httpErr(http.StatusForbidden, "cards live directly in %s", b.h.bookPath(user))
	}
	c, _, err := vcard.FromCard(card)
	if err != nil {
		return nil, httpErr(http.StatusBadRequest, "%v", err)
	}
	c.ID = id
	var expect uint64
	switch {
	case opts.IfNoneMatch.IsWildcard():
		expect = 0
	case opts.IfMatch.IsSet():
		if expect, err = b.expected(ctx, user, id, string(opts.IfMatch)); err != nil {
			return nil, err
		}
	default:
		cur, err := b.h.book.Get(ctx, user, id)
		switch {
		case err == nil && !cur.Deleted:
			expect = cur.Version
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, b.internal(err)
		}
	}
	stored, err := b.h.writer.Put(ctx, user, c, expect)
	if err != nil {
		return nil, b.writeErr(err)
	}
	ao := b.object(user, &stored)
	return &ao, nil
}

// expected turns an If-Match value into the version a write must find.
func (b *davBackend) expected(ctx context.Context, user, id, ifMatch string) (uint64, error) {
	m := webdav.ConditionalMatch(ifMatch)
	if m.IsWildcard() {
		cur, err := b.h.book.Get(ctx, user, id)
		if err != nil || cur.Deleted {
			return 0, httpErr(http.StatusPreconditionFailed, "If-Match: * but %s does not exist", id)
		}
		return cur.Version, nil
	}
	tag, err := m.ETag()
	if err != nil {
		return 0, httpErr(http.StatusBadRequest, "malformed If-Match")
	}
	v, err := strconv.ParseUint(tag, 10, 64)
	if err != nil || v == 0 {
		return 0, httpErr(http.StatusPreconditionFailed, "If-Match %s is not a version of %s", ifMatch, id)
	}
	return v, nil
}

func (b *davBackend) DeleteAddressObject(ctx context.Context, p string) error {
	user := userFrom(ctx)
	id, ok := b.h.objectID(user, p)
	if !ok {
		return httpErr(http.StatusNotFound, "no card at %s", p)
	}
	var expect uint64
	if im, _ := ctx.Value(keyIfMatch).(string); im != "" {
		v, err := b.expected(ctx, user, id, im)
		if err != nil {
			return err
		}
		expect = v
	} else {
		cur, err := b.h.book.Get(ctx, user, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Deleted) {
			return httpErr(http.StatusNotFound, "no card at %s", p)
		}
		if err != nil {
			return b.internal(err)
		}
		expect = cur.Version
	}
	return b.writeErr(b.h.writer.Delete(ctx, user, id, expect))
}

// writeErr maps a write failure to its status (RFC 6352 §6.3.2, RFC 4918 §11.5).
func (b *davBackend) writeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrExists):
		return httpErr(http.StatusPreconditionFailed, "the card changed; fetch it and retry")
	case errors.Is(err, store.ErrNotFound):
		return httpErr(http.StatusPreconditionFailed, "the card does not exist")
	case errors.Is(err, store.ErrContactLimit):
		return httpErr(http.StatusInsufficientStorage, "the address book is full")
	case errors.Is(err, ErrInvalid):
		return httpErr(http.StatusBadRequest, "%v", err)
	}
	return b.internal(err)
}

func (b *davBackend) internal(err error) error {
	b.h.log.Error("carddav request failed", zap.Error(err))
	return httpErr(http.StatusInternalServerError, "internal error")
}
