package stepca

import (
	"context"
	"net/http"
	"net/url"

	"github.com/slapenir/slapenir/internal/pki/token"
)

// Provisioners lists the CA's provisioners, following its pagination.
func (c *Client) Provisioners(ctx context.Context) ([]token.Provisioner, error) {
	var all []token.Provisioner
	cursor := ""
	for {
		path := "/provisioners?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Provisioners []token.Provisioner `json:"provisioners"`
			NextCursor   string              `json:"nextCursor"`
		}
		if err := c.do(ctx, "provisioners", http.MethodGet, path, nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Provisioners...)
		if page.NextCursor == "" || len(page.Provisioners) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}
