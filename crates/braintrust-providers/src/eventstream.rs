//! The AWS event-stream binary framing of Bedrock's `converse-stream`, decoded with CRC checks
//! by `aws-smithy-eventstream`, whatever the chunk boundaries.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::HeaderValue;
use bytes::BytesMut;

/// One decoded message: its `:message-type`, `:event-type` (or `:exception-type`) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventMessage {
    pub(crate) message_type: String,
    pub(crate) event_type: String,
    pub(crate) payload: Vec<u8>,
}

/// Buffers bytes and yields complete messages.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buffer: BytesMut,
    frames: MessageFrameDecoder,
}

impl Decoder {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete message; an error when a frame is corrupt (bad length or CRC).
    pub(crate) fn next_message(&mut self) -> Result<Option<EventMessage>, String> {
        match self.frames.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Ok(DecodedFrame::Complete(message)) => {
                let header = |name: &str| {
                    message
                        .headers()
                        .iter()
                        .find(|h| h.name().as_str() == name)
                        .and_then(|h| match h.value() {
                            HeaderValue::String(s) => Some(s.as_str().to_owned()),
                            _ => None,
                        })
                };
                let message_type = header(":message-type").unwrap_or_else(|| "event".into());
                let event_type = header(":event-type")
                    .or_else(|| header(":exception-type"))
                    .or_else(|| header(":error-code"))
                    .unwrap_or_default();
                Ok(Some(EventMessage {
                    message_type,
                    event_type,
                    payload: message.payload().to_vec(),
                }))
            }
            Err(e) => Err(format!("corrupt event-stream frame: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, Message};

    fn frame(event_type: &str, payload: &str) -> Vec<u8> {
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }

    #[test]
    fn frames_decode_at_any_split_and_corruption_is_an_error() {
        let mut bytes = frame("messageStart", r#"{"role":"assistant"}"#);
        bytes.extend(frame("contentBlockDelta", r#"{"delta":{"text":"hi"}}"#));
        for cut in 0..=bytes.len() {
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                decoder.feed(part);
                while let Some(m) = decoder.next_message().unwrap() {
                    out.push(m.event_type);
                }
            }
            assert_eq!(out, ["messageStart", "contentBlockDelta"], "cut at {cut}");
        }
        let mut corrupt = frame("messageStart", "{}");
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let mut decoder = Decoder::default();
        decoder.feed(&corrupt);
        assert!(decoder.next_message().is_err());
    }
}
