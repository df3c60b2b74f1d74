//! An incremental parser of `text/event-stream` (the WHATWG HTML "server-sent events"
//! interpretation): bytes arrive in arbitrary chunks, events come out once their blank line has.

/// The longest line (and event data) accepted. Our servers send lines of about a hundred bytes;
/// a peer sending more is not one of them, and buffering it without bound would let it grow the
/// client's memory.
const MAX_LINE: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `event:`, `message` when absent.
    pub(crate) event: String,
    /// The `data:` lines joined with `\n`.
    pub(crate) data: String,
}

/// The stream broke the format (a line or event over [`MAX_LINE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

#[derive(Debug, Default)]
pub(crate) struct Parser {
    line: Vec<u8>,
    /// A line ended with `\r`: a `\n` right after it (maybe in the next chunk) belongs to it.
    after_cr: bool,
    /// Nothing read yet: a leading byte order mark is skipped.
    started: bool,
    data: String,
    has_data: bool,
    event: String,
    id_buffer: String,
    last_event_id: String,
    retry_ms: Option<u64>,
}

impl Parser {
    /// The last event ID: what a reconnection sends as `Last-Event-ID` (empty: none).
    pub(crate) fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time the stream asked for (`retry:`), if any.
    pub(crate) fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Reads one chunk; returns the events it completed.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<Event>, TooLong> {
        if !self.started && !chunk.is_empty() {
            self.started = true;
            chunk = chunk.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(chunk);
        }
        let mut events = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line)? {
                        events.push(event);
                    }
                }
                _ if self.line.len() >= MAX_LINE => return Err(TooLong),
                _ => self.line.push(byte),
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<Event>, TooLong> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.first() == Some(&b':') {
            return Ok(None); // a comment (our servers' heartbeats)
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() >= MAX_LINE {
                    return Err(TooLong);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => value.clone_into(&mut self.event),
            "id" if !value.contains('\0') => value.clone_into(&mut self.id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {} // unknown fields are ignored
        }
        Ok(None)
    }

    /// A blank line: the event so far. The last event ID is taken over even when there is no
    /// data (our streams open with an `id:`-only block naming the current version).
    fn dispatch(&mut self) -> Option<Event> {
        self.last_event_id.clone_from(&self.id_buffer);
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
        }
    }

    #[test]
    fn the_origin_s_opening_sets_the_retry_and_the_last_event_id_without_an_event() {
        let mut parser = Parser::default();
        assert_eq!(parser.feed(b"retry: 2000\nid: 41\n\n"), Ok(vec![]));
        assert_eq!(parser.last_event_id(), "41");
        assert_eq!(parser.retry_ms(), Some(2000));
    }

    #[test]
    fn a_refetch_event_split_across_chunks_at_every_byte_is_dispatched_once() {
        let text =
            "id: 42\nevent: message\ndata: {\"type\":\"refetchEvaluation\"}\n\n: heartbeat\n\n";
        for split in 0..text.len() {
            let mut parser = Parser::default();
            let (a, b) = text.as_bytes().split_at(split);
            let mut events = parser.feed(a).unwrap();
            events.extend(parser.feed(b).unwrap());
            assert_eq!(events, vec![event("{\"type\":\"refetchEvaluation\"}")]);
            assert_eq!(parser.last_event_id(), "42");
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_split_between_chunks_end_lines_once() {
        let mut parser = Parser::default();
        let mut events = parser.feed(b"data: a\r").unwrap();
        events.extend(parser.feed(b"\ndata: b\r\r").unwrap());
        events.extend(parser.feed(b"data: c\r\n\r\n").unwrap());
        assert_eq!(events, vec![event("a\nb"), event("c")]);
    }

    #[test]
    fn fields_follow_the_spec_comments_bom_missing_space_and_unknown_fields() {
        let mut parser = Parser::default();
        let events = parser
            .feed(b"\xEF\xBB\xBF: hi\ndata:x\nfoo: bar\nevent: custom\ndata\n\n")
            .unwrap();
        assert_eq!(
            events,
            vec![Event {
                event: "custom".into(),
                data: "x\n".into()
            }]
        );
    }

    #[test]
    fn an_id_with_nul_and_a_non_numeric_retry_are_ignored() {
        let mut parser = Parser::default();
        parser
            .feed(b"id: 7\n\nid: a\0b\nretry: 5s\ndata: x\n\n")
            .unwrap();
        assert_eq!(parser.last_event_id(), "7");
        assert_eq!(parser.retry_ms(), None);
    }

    #[test]
    fn an_endless_line_is_refused_instead_of_buffered() {
        let mut parser = Parser::default();
        let long = vec![b'a'; MAX_LINE + 1];
        assert_eq!(parser.feed(&long), Err(TooLong));
    }
}
