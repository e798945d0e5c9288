package instance

import (
	"fmt"
	"hash/crc32"
)

func crcHex(body string) string { return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) }
