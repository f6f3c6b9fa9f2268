package console

import (
	"io"
	"net/url"
	"strings"
)

func httpBody(form url.Values) io.ReadCloser { return io.NopCloser(strings.NewReader(form.Encode())) }
