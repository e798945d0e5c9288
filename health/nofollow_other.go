//go:build !unix

package health

// oNoFollow and oNonBlock have no equivalent here; O_EXCL alone still keeps
// temp file creation from following a link.
const (
	oNoFollow = 0
	oNonBlock = 0
)
