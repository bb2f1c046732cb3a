//! CSV text as the project reads it: through the `csv` crate (quoted fields,
//! doubled quotes, CRLF line ends, a UTF-8 byte-order mark), rows of any length
//! (each reader checks its own and names the field), blank lines skipped, and
//! each record with the line of the file it starts on, for error messages. Takes
//! text, never a path: callers read their files.
//!
//! Header names come trimmed; data fields do not (the `csv` crate's trimming
//! rebuilds every record, a third of the reading time), so readers trim the
//! fields they use.
//!
//! The `csv` crate's own `Position::line` is not used: it counts neither blank
//! lines nor CRLF line ends the way an editor does, so the line is counted here
//! from the record's byte offset.

use csv::StringRecord;

/// A CSV syntax error (such as a quote left open), with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    /// 1-based line number.
    pub line: usize,
    /// The `csv` crate's message.
    pub message: String,
}

/// Records of CSV text, each with its line.
pub struct CsvText<'a> {
    reader: csv::Reader<&'a [u8]>,
    text: &'a [u8],
    /// Lines are counted up to this byte offset …
    counted_to: usize,
    /// … where this line begins (1-based).
    line: usize,
    record: StringRecord,
}

impl<'a> CsvText<'a> {
    /// Reads `text`; with `has_headers`, the first record is the header, read
    /// by [`CsvText::headers`] and not returned by [`CsvText::next_record`].
    pub fn new(text: &'a str, has_headers: bool) -> CsvText<'a> {
        CsvText {
            reader: csv::ReaderBuilder::new()
                .has_headers(has_headers)
                .flexible(true)
                .from_reader(text.as_bytes()),
            text: text.as_bytes(),
            counted_to: 0,
            line: 1,
            record: StringRecord::new(),
        }
    }

    /// The header's fields (empty for empty text).
    pub fn headers(&mut self) -> Result<Vec<String>, CsvError> {
        match self.reader.headers() {
            Ok(record) => Ok(record.iter().map(|f| f.trim().to_string()).collect()),
            Err(e) => Err(CsvError {
                line: 1,
                message: e.to_string(),
            }),
        }
    }

    /// The next record that is not blank (only spaces), with the line it starts
    /// on; `None` at the end. Fields are not trimmed.
    pub fn next_record(&mut self) -> Option<Result<(usize, &StringRecord), CsvError>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    if self.record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    let byte = self.record.position().map_or(0, |p| p.byte() as usize);
                    let line = self.line_at(byte);
                    return Some(Ok((line, &self.record)));
                }
                Err(e) => {
                    let byte = e.position().map_or(self.counted_to, |p| p.byte() as usize);
                    let line = self.line_at(byte);
                    return Some(Err(CsvError {
                        line,
                        message: e.to_string(),
                    }));
                }
            }
        }
    }

    /// The line of the first character at or after `byte` that is not a line
    /// end: the reader reports a record from where the previous one stopped,
    /// before any line ends and blank lines between them.
    fn line_at(&mut self, byte: usize) -> usize {
        let mut start = byte.max(self.counted_to).min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        self.line += self.text[self.counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.counted_to = start;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, Vec<String>)> {
        let mut csv = CsvText::new(text, true);
        csv.headers().unwrap();
        let mut out = Vec::new();
        while let Some(record) = csv.next_record() {
            let (line, record) = record.unwrap();
            out.push((line, record.iter().map(|f| f.trim().to_string()).collect()));
        }
        out
    }

    #[test]
    fn lines_count_blank_lines_crlf_and_quoted_line_breaks() {
        let expect = |l: usize, a: &str, b: &str| (l, vec![a.to_string(), b.to_string()]);
        assert_eq!(
            lines("a,b\n1,2\n\n3,4\n"),
            vec![expect(2, "1", "2"), expect(4, "3", "4")]
        );
        assert_eq!(
            lines("\u{feff}a,b\r\n1,2\r\n\r\n\"3\", 4 \r\n"),
            vec![expect(2, "1", "2"), expect(4, "3", "4")]
        );
        assert_eq!(
            lines("a,b\n\"x\ny\",2\n3,\"4,5\"\n"),
            vec![expect(2, "x\ny", "2"), expect(4, "3", "4,5")]
        );
        assert_eq!(lines("a,b\n \n5,6"), vec![expect(3, "5", "6")]);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_header() {
        let mut csv = CsvText::new("\u{feff}\"time\",value\n", true);
        assert_eq!(csv.headers().unwrap(), vec!["time", "value"]);
    }
}
