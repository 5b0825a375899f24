//! An incremental server-sent-events parser (the WHATWG event-stream format): bytes in, events
//! out, whatever the chunk boundaries. Used for `/function/invoke` streams and provider streams.
//!
//! ```
//! use braintrust_transport::sse::SseParser;
//!
//! let mut parser = SseParser::default();
//! parser.feed(b"event: delta\ndata: {\"a\"");
//! assert!(parser.next_event().is_none());
//! parser.feed(b":1}\n\ndata: [DONE]\n\n");
//! let first = parser.next_event().unwrap();
//! assert_eq!((first.event.as_str(), first.data.as_str()), ("delta", "{\"a\":1}"));
//! assert_eq!(parser.next_event().unwrap().data, "[DONE]");
//! ```

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds on byte chunks; complete events queue up in `events`.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    events: VecDeque<SseEvent>,
}

impl SseParser {
    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.events.pop_front()
    }

    /// Parses a chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        // An empty chunk says nothing about the byte after a `\r`: keep waiting for it.
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(b'\n') = rest.first() {
                rest = &rest[1..];
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..i]);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
            if rest[i] == b'\r' {
                match rest.get(i + 1) {
                    Some(b'\n') => rest = &rest[i + 2..],
                    Some(_) => rest = &rest[i + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[i + 1..];
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// The stream ended: a final line without a newline still counts, and a last event without
    /// its blank line is dispatched too (servers that close right after the data).
    pub fn finish(&mut self) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
        }
        self.dispatch();
    }

    fn line_done(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            return; // a comment
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // `id`, `retry` and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        self.events.push_back(SseEvent {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            parser.feed(&input[start..cut]);
            start = cut;
        }
        parser.finish();
        parser.events.into_iter().collect()
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    const STREAM: &str = ": keep-alive comment\n\
        event: start\ndata: \n\n\
        event: text_delta\ndata: \"Hel\"\n\n\
        event: text_delta\r\ndata: \"lo ☃\"\r\n\r\n\
        id: 7\nretry: 100\nevent: progress\ndata: {\"a\":\ndata: 1}\n\n\
        event: mystery\ndata: x\rdata: y\r\r\
        data: no event name\n\n\
        event: nodata\n\n\
        event: done\ndata:";

    fn expected() -> Vec<SseEvent> {
        vec![
            ev("start", ""),
            ev("text_delta", "\"Hel\""),
            ev("text_delta", "\"lo ☃\""),
            ev("progress", "{\"a\":\n1}"),
            ev("mystery", "x\ny"),
            ev("message", "no event name"),
            ev("done", ""),
        ]
    }

    #[test]
    fn parses_comments_multiline_data_all_line_endings_and_unknown_events() {
        assert_eq!(parse_in_pieces(STREAM.as_bytes(), &[]), expected());
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[cut]), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn empty_chunks_after_a_carriage_return_change_nothing() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                parse_in_pieces(bytes, &[cut, cut]),
                expected(),
                "empty chunk at {cut}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn random_chunking_gives_the_same_events(mut cuts in proptest::collection::vec(0usize..200, 0..12)) {
            cuts.sort_unstable();
            proptest::prop_assert_eq!(parse_in_pieces(STREAM.as_bytes(), &cuts), expected());
        }
    }
}
