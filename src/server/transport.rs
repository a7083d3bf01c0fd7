//! The stdio framing guard in front of the LSP transport.
//!
//! tower-lsp-server stops reading its input after the first frame it cannot decode, which would
//! end the server on one bad message. This guard owns the real stdin/stdout: it reads
//! `Content-Length` frames itself, answers a frame that is not a JSON object with a `-32700 Parse
//! error` response, skips headers without a length, and forwards only well-formed frames to the
//! transport through an in-memory pipe. Output frames are written whole, so its own error
//! responses never interleave with the transport's. When stdin closes, the transport's input
//! closes too and the server ends.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Frames larger than this are refused (and skipped) instead of buffered.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
const PIPE_BYTES: usize = 1 << 20;

/// One frame read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A body that parsed as a JSON object.
    Message(Vec<u8>),
    /// Something that cannot be processed; the string says why.
    Malformed(String),
}

/// Wraps a body in `Content-Length` framing.
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn parse_error(why: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {why}")}
    });
    encode_frame(body.to_string().as_bytes())
}

/// Reads the next frame; `Ok(None)` at end of input.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> std::io::Result<Option<Frame>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut saw_header = false;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(if saw_header { Some(Frame::Malformed("input ended inside a header".into())) } else { None });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !saw_header {
                continue; // stray blank line between frames
            }
            break;
        }
        saw_header = true;
        if let Some((name, value)) = text.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().map_err(|_| format!("bad Content-Length `{}`", value.trim())));
            }
        }
    }
    let length = match length {
        None => return Ok(Some(Frame::Malformed("a header without Content-Length".into()))),
        Some(Err(why)) => return Ok(Some(Frame::Malformed(why))),
        Some(Ok(n)) => n,
    };
    if length > MAX_FRAME_BYTES {
        // Skip the body without holding it in memory.
        let skipped = tokio::io::copy(&mut reader.take(length as u64), &mut tokio::io::sink()).await?;
        let why = format!("a message of {length} bytes is over the limit of {MAX_FRAME_BYTES} bytes");
        return Ok(Some(if skipped < length as u64 {
            Frame::Malformed("input ended inside a message".into())
        } else {
            Frame::Malformed(why)
        }));
    }
    let mut body = vec![0u8; length];
    if let Err(e) = reader.read_exact(&mut body).await {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Ok(Some(Frame::Malformed("input ended inside a message".into())));
        }
        return Err(e);
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(_)) => Ok(Some(Frame::Message(body))),
        Ok(_) => Ok(Some(Frame::Malformed("the message is not a JSON object".into()))),
        Err(e) => Ok(Some(Frame::Malformed(format!("the message is not valid JSON: {e}")))),
    }
}

/// Reads the client's first frame from a blocking reader (stdin, at start, before any async
/// runtime exists) and returns the bytes it consumed, to be served again in front of the rest of
/// the input, with the message when it is a JSON object. It reads no further than that frame;
/// whatever it cannot make sense of is left for [`serve_guarded`] to answer.
pub fn read_first_frame(reader: &mut impl std::io::BufRead) -> (Vec<u8>, Option<serde_json::Value>) {
    /// A header longer than this is not a header: give up and let the guard answer.
    const MAX_HEADER_BYTES: usize = 8 * 1024;
    let mut consumed = Vec::new();
    let mut length = None;
    loop {
        let before = consumed.len();
        match reader.read_until(b'\n', &mut consumed) {
            Ok(0) | Err(_) => return (consumed, None),
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&consumed[before..]).trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if length.is_some() {
                break;
            }
            if before > 0 {
                return (consumed, None);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
        if consumed.len() > MAX_HEADER_BYTES {
            return (consumed, None);
        }
    }
    let Some(length) = length.filter(|&n| n <= MAX_FRAME_BYTES) else { return (consumed, None) };
    let start = consumed.len();
    consumed.resize(start + length, 0);
    if reader.read_exact(&mut consumed[start..]).is_err() {
        // Keep only what really arrived: the guard reports the cut message.
        consumed.truncate(start);
        return (consumed, None);
    }
    let message = serde_json::from_slice::<serde_json::Value>(&consumed[start..]).ok().filter(serde_json::Value::is_object);
    (consumed, message)
}

/// Copies client frames into `to_server`, answering malformed ones through `errors`.
async fn pump_input<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(input: R, mut to_server: W, errors: mpsc::UnboundedSender<Vec<u8>>) {
    let mut reader = BufReader::new(input);
    loop {
        match read_frame(&mut reader).await {
            Ok(Some(Frame::Message(body))) => {
                if to_server.write_all(&encode_frame(&body)).await.is_err() || to_server.flush().await.is_err() {
                    break; // the server has stopped reading (exit)
                }
            }
            Ok(Some(Frame::Malformed(why))) => {
                tracing::warn!("malformed message from the client: {why}");
                let _ = errors.send(parse_error(&why));
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading from the client failed: {e}");
                break;
            }
        }
    }
    let _ = to_server.shutdown().await;
}

/// Writes whole frames from the server and the guard's own errors to `output`.
async fn pump_output<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from_server: R,
    mut output: W,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut reader = BufReader::new(from_server);
    loop {
        tokio::select! {
            frame = read_frame(&mut reader) => match frame {
                Ok(Some(Frame::Message(body))) => {
                    if output.write_all(&encode_frame(&body)).await.is_err() { break; }
                }
                Ok(Some(Frame::Malformed(why))) => tracing::error!("the server wrote a malformed frame: {why}"),
                Ok(None) | Err(_) => break,
            },
            Some(err) = errors.recv() => {
                if output.write_all(&err).await.is_err() { break; }
            }
        }
        if output.flush().await.is_err() {
            break;
        }
    }
}

/// How long the server may still write answers once the client's input has ended (or the
/// server stopped reading it after `exit`). The transport would otherwise wait for every request
/// in flight, such as a completion with a long time budget, before the process could exit.
pub const INPUT_CLOSED_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Serves `service` over `input`/`output` behind the guard. Returns when the server is done, or
/// [`INPUT_CLOSED_GRACE`] after the input ended, whichever comes first: a client that closed its
/// end is gone, and work still in flight for it is abandoned.
pub async fn serve_guarded<I, O, F>(input: I, output: O, serve: impl FnOnce(tokio::io::DuplexStream, tokio::io::DuplexStream) -> F)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let (server_in, guard_to_server) = tokio::io::duplex(PIPE_BYTES);
    let (server_out, guard_from_server) = tokio::io::duplex(PIPE_BYTES);
    let (err_tx, err_rx) = mpsc::unbounded_channel();
    let mut input_task = tokio::spawn(pump_input(input, guard_to_server, err_tx));
    let server = serve(server_in, server_out);
    let writer = pump_output(guard_from_server, output, err_rx);
    let serving = async {
        tokio::join!(server, writer);
    };
    tokio::pin!(serving);
    tokio::select! {
        () = &mut serving => {}
        _ = &mut input_task => {
            if tokio::time::timeout(INPUT_CLOSED_GRACE, &mut serving).await.is_err() {
                tracing::info!("the client's input ended; not waiting for requests still in flight");
            }
        }
    }
    input_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut reader = BufReader::new(bytes);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut reader).await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn the_guard_returns_soon_after_the_input_ends_even_if_work_is_in_flight() {
        let started = std::time::Instant::now();
        let output = tokio::io::sink();
        // A server that never finishes, as the transport does while a request is in flight.
        serve_guarded(&b""[..], output, |_input, _output| std::future::pending::<()>()).await;
        assert!(started.elapsed() < INPUT_CLOSED_GRACE * 5, "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn the_first_frame_read_at_start_is_served_again_with_the_rest() {
        let mut input = encode_frame(br#"{"id":1,"method":"initialize"}"#);
        input.extend(encode_frame(br#"{"b":2}"#));
        let mut reader = std::io::BufReader::new(&input[..]);
        let (consumed, first) = read_first_frame(&mut reader);
        assert_eq!(first, Some(serde_json::json!({"id": 1, "method": "initialize"})));
        assert_eq!(consumed, encode_frame(br#"{"id":1,"method":"initialize"}"#), "reads no further than its frame");
        let mut replayed = consumed;
        std::io::Read::read_to_end(&mut reader, &mut replayed).unwrap();
        assert_eq!(frames(&replayed).await.len(), 2);
        assert_eq!(replayed, input);
        // Whatever it cannot read is consumed as is, for the guard to answer.
        for bad in [&b"Content-Length: 50\r\n\r\n{\"cut\":"[..], b"X: 1\r\n\r\n{}", b"", b"Content-Length: 2\r\n\r\n[]"] {
            let (consumed, first) = read_first_frame(&mut std::io::BufReader::new(bad));
            assert_eq!(first, None);
            assert!(bad.starts_with(&consumed), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn good_bad_and_truncated_frames() {
        let mut input = encode_frame(br#"{"a":1}"#);
        input.extend(encode_frame(b"{not json}"));
        input.extend(b"X-Header: 1\r\n\r\n");
        input.extend(encode_frame(b"[1,2]"));
        input.extend(b"Content-Length: abc\r\n\r\n");
        input.extend(encode_frame(br#"{"b":2}"#));
        input.extend(b"Content-Length: 50\r\n\r\n{\"cut\":");
        let got = frames(&input).await;
        assert_eq!(got[0], Frame::Message(br#"{"a":1}"#.to_vec()));
        assert!(matches!(&got[1], Frame::Malformed(w) if w.contains("not valid JSON")));
        assert!(matches!(&got[2], Frame::Malformed(w) if w.contains("without Content-Length")));
        assert!(matches!(&got[3], Frame::Malformed(w) if w.contains("not a JSON object")));
        assert!(matches!(&got[4], Frame::Malformed(w) if w.contains("bad Content-Length")));
        assert_eq!(got[5], Frame::Message(br#"{"b":2}"#.to_vec()));
        assert!(matches!(&got[6], Frame::Malformed(w) if w.contains("ended inside")));
        assert_eq!(got.len(), 7);
    }
}
