package plan

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxAliasNodes bounds the nodes that aliases may add to a document once expanded. Real
// plans alias a few small values; an alias bomb (each anchor a list of aliases of the
// previous one) grows exponentially and is refused at the alias that crosses the bound.
const maxAliasNodes = 10000

// checkUTF8 returns an error placed at the first byte that is not UTF-8, or nil. yaml.v3
// reports such a byte without a place; an operator needs the line and column. A file
// starting with a UTF-16 byte order mark is left to yaml.v3, which decodes UTF-16.
func checkUTF8(path string, data []byte) *Error {
	if utf8.Valid(data) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Error{Pos: Pos{File: path, Line: line, Col: col},
				Msg: fmt.Sprintf("byte 0x%02x (offset %d) is not UTF-8; plan files are UTF-8 text", data[i], i)}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// expandAliases replaces every alias in the tree under n by a copy of what it refers to,
// placed at the alias: a problem in an aliased value is reported where the value is used
// (the line an operator reads as "timeout: *t"), not only at the anchor. It returns an
// error at the first alias past maxAliasNodes.
func expandAliases(path string, n *yaml.Node) *Error {
	budget := maxAliasNodes
	var walk func(n *yaml.Node) *Error
	walk = func(n *yaml.Node) *Error {
		for i, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				cp, err := copyAt(path, c, c, &budget)
				if err != nil {
					return err
				}
				n.Content[i] = cp
				continue
			}
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n)
}

// copyAt deep-copies n (following aliases) with every node placed at use.
func copyAt(path string, n, use *yaml.Node, budget *int) (*yaml.Node, *Error) {
	for depth := 0; n.Kind == yaml.AliasNode; depth++ {
		if n.Alias == nil || depth > 100 {
			return nil, &Error{Pos: Pos{File: path, Line: use.Line, Col: use.Column}, Msg: fmt.Sprintf("alias *%s refers to nothing usable", use.Value)}
		}
		n = n.Alias
	}
	*budget--
	if *budget < 0 {
		return nil, &Error{Pos: Pos{File: path, Line: use.Line, Col: use.Column},
			Msg: fmt.Sprintf("alias *%s makes the document larger than %d nodes once aliases are expanded (an alias bomb?)", use.Value, maxAliasNodes)}
	}
	cp := *n
	cp.Anchor = ""
	cp.Line, cp.Column = use.Line, use.Column
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		var err *Error
		if cp.Content[i], err = copyAt(path, c, use, budget); err != nil {
			return nil, err
		}
	}
	return &cp, nil
}
