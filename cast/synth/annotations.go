package synth

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Annotation is one line of an SSv2-style annotation list: a video file and its class label.
type Annotation struct {
	Video string
	Label int
}

// ParseAnnotations reads the official SSv2 'video label' list format, one "clip.mp4 LABEL" per line with
// the two fields separated by spaces, tabs or a comma (as WriteDataset writes it). Blank lines are
// skipped; any other line that is not exactly a video name and a non-negative integer label is an error
// naming its line number.
func ParseAnnotations(r io.Reader) ([]Annotation, error) {
	var out []Annotation
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var fields []string
		if strings.Contains(text, ",") {
			fields = strings.Split(text, ",")
			for i := range fields {
				fields[i] = strings.TrimSpace(fields[i])
			}
		} else {
			fields = strings.Fields(text)
		}
		if len(fields) != 2 || fields[0] == "" {
			return nil, fmt.Errorf("synth: annotations line %d: want \"video label\", got %q", line, text)
		}
		label, err := strconv.Atoi(fields[1])
		if err != nil || label < 0 {
			return nil, fmt.Errorf("synth: annotations line %d: label %q is not a non-negative integer", line, fields[1])
		}
		out = append(out, Annotation{Video: fields[0], Label: label})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("synth: reading annotations: %w", err)
	}
	return out, nil
}

// EPICAnnotation is one EPIC-KITCHENS-100 action segment: a video (segment) id with its verb and noun
// class indices.
type EPICAnnotation struct {
	Video string
	Verb  int
	Noun  int
}

// ParseEPICAnnotations reads EPIC-KITCHENS-style "id,verb,noun" CSV lines. An optional header is
// recognised as a first record whose verb and noun fields are both non-numeric (for example
// "id,verb,noun") and skipped. Blank lines are skipped; a record with a field count other than three, an
// empty id or a verb or noun that is not a non-negative integer is an error naming its line number.
func ParseEPICAnnotations(r io.Reader) ([]EPICAnnotation, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	cr.TrimLeadingSpace = true
	var out []EPICAnnotation
	header := true // the next record may still be a header
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("synth: EPIC annotations: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // whitespace-only line
		}
		if len(rec) != 3 {
			return nil, fmt.Errorf("synth: EPIC annotations line %d: want 3 fields \"id,verb,noun\", got %d", line, len(rec))
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		verb, verr := strconv.Atoi(rec[1])
		noun, nerr := strconv.Atoi(rec[2])
		if header && verr != nil && nerr != nil {
			header = false
			continue
		}
		header = false
		switch {
		case rec[0] == "":
			return nil, fmt.Errorf("synth: EPIC annotations line %d: empty id", line)
		case verr != nil || verb < 0:
			return nil, fmt.Errorf("synth: EPIC annotations line %d: verb %q is not a non-negative integer", line, rec[1])
		case nerr != nil || noun < 0:
			return nil, fmt.Errorf("synth: EPIC annotations line %d: noun %q is not a non-negative integer", line, rec[2])
		}
		out = append(out, EPICAnnotation{Video: rec[0], Verb: verb, Noun: noun})
	}
}
