//! A Server-Sent Events parser (the WHATWG `text/event-stream` format), fed the body's chunks as
//! they arrive.
//!
//! Written here rather than taken from a crate: it is some sixty lines, and the ones on
//! crates.io either want a `bytes_stream` (reqwest's `stream` feature) or bring their own HTTP
//! client. Chunks split anywhere (inside a line, between `\r` and `\n`, inside a UTF-8
//! sequence), so bytes are kept until a line is whole.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:`; `message` when the event named none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// A line longer than this is no event Behalf sends: the stream is refused rather than held in
/// memory without bound.
const MAX_LINE: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` starting the next one belongs to that line end.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    started: bool,
}

impl Parser {
    /// Feeds `chunk`, returning the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(format!(
                            "the event stream sent a line over {MAX_LINE} bytes"
                        ));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        let mut line = String::from_utf8_lossy(line).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            // A blank line dispatches; an event without data is dropped (as browsers do).
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(Event {
                event: if event.is_empty() {
                    "message".into()
                } else {
                    event
                },
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment: keep-alives
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry, and fields the format tells clients to ignore
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        chunks
            .iter()
            .flat_map(|c| parser.push(c).unwrap())
            .collect()
    }

    #[test]
    fn events_with_names_data_and_comments() {
        let stream = b": keep-alive\n\nevent: progress\ndata: {\"a\":1}\n\nevent: done\ndata:{\"a\":2}\nid: 7\nretry: 100\n\n";
        assert_eq!(
            all(&[stream]),
            vec![event("progress", "{\"a\":1}"), event("done", "{\"a\":2}")]
        );
    }

    #[test]
    fn the_same_events_whatever_the_chunks_and_line_ends() {
        let lf: &[u8] =
            b"event: progress\ndata: one\ndata: two\n\nevent: done\ndata: \xc3\xa9t\xc3\xa9\n\n";
        let expected = vec![event("progress", "one\ntwo"), event("done", "été")];
        let crlf = String::from_utf8(lf.to_vec())
            .unwrap()
            .replace('\n', "\r\n");
        let cr = String::from_utf8(lf.to_vec()).unwrap().replace('\n', "\r");
        for stream in [lf, crlf.as_bytes(), cr.as_bytes()] {
            assert_eq!(all(&[stream]), expected);
            // Split at every byte: inside a field, between \r and \n, inside a UTF-8 sequence.
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(all(&bytes), expected);
            for cut in 0..stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(all(&[a, b]), expected, "cut at {cut}");
            }
        }
    }

    #[test]
    fn no_data_no_event_and_unnamed_events_are_messages() {
        assert_eq!(
            all(&[b"event: progress\n\ndata\n\ndata: x\n\n"]),
            vec![event("message", ""), event("message", "x")]
        );
        // An event not yet ended by a blank line is not dispatched.
        assert!(all(&[b"event: done\ndata: {}\n"]).is_empty());
        assert_eq!(
            all(&[b"\xef\xbb\xbfdata: bom\n\n"]),
            vec![event("message", "bom")]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = Parser::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..9 {
            result = parser.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
