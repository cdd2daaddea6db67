//! STAT and ABOR while a protected transfer runs (RFC 959 §4.1.3, RFC 4217
//! §14): over TLS there is no TCP urgent data, so the server must read the
//! control connection while the data connection is busy. The checker keeps
//! the transfer going — an upload it trickles on, or a download of a large
//! file it reads slowly — and sends the command in-band.

use std::time::Duration;

use ftps_proto::reply::Reply;

use crate::context::{Ctx, Session};
use crate::probe::control::line_of;
use crate::probe::data::{self, DataStream};
use crate::probe::ProbeError;
use crate::report::Outcome;

use super::data::ftps_content;

/// Bytes sent before STAT or ABOR interrupts an upload.
const FIRST_PART_BYTES: usize = 256 * 1024;
/// Bytes moved each step while waiting for a reply.
const TRICKLE_BYTES: usize = 16 * 1024;
/// A file at least this large can be held up mid-download by reading slowly.
const STALLABLE_BYTES: u64 = 32 << 20;

/// A protected transfer under way, moved on only by the check.
struct Held {
    stream: DataStream,
    upload: Option<String>,
    flowing: bool,
}

/// How long a reply to STAT or ABOR may take while a transfer runs.
fn prompt(ctx: &Ctx) -> Duration {
    ctx.env.limits.quiet * 4
}

/// Start a transfer and hold it: an upload with its first part sent (when
/// there is an upload directory), or a download of a large file not read yet.
async fn hold_transfer(
    ctx: &mut Ctx,
    s: &mut Session,
) -> Result<Result<Held, Outcome>, ProbeError> {
    let (command, upload) = if let Some(path) = ctx.env.upload_path(&ctx.scratch_name("held")) {
        (format!("STOR {path}"), Some(path))
    } else if let Some(big) = ctx.facts.files.iter().find(|f| f.size >= STALLABLE_BYTES) {
        (format!("RETR {}", big.path), None)
    } else {
        return Ok(Err(Outcome::skip(
            "needs --dir to upload to, or a file of at least 32 MiB in the login directory",
        )));
    };
    let label = ctx.data_label();
    let addr = data::passive(&mut s.conn).await?;
    let tcp = data::connect(addr, &label, &ctx.rec, ctx.env.limits.reply).await?;
    let first = s.conn.cmd(&command).await?;
    if !first.is_preliminary() {
        return Ok(Err(Outcome::warn(format!(
            "{command}: {}",
            line_of(&first)
        ))));
    }
    let config = ctx.env.tls.config(s.versions, Some(&s.store));
    let (mut stream, _) = data::handshake(
        tcp,
        config,
        ctx.env.tls.name.clone(),
        &label,
        &ctx.rec,
        ctx.env.limits.reply,
    )
    .await?;
    if upload.is_some() {
        stream
            .write_some(&ftps_content(FIRST_PART_BYTES), ctx.env.limits.reply)
            .await?;
        ctx.rec.push(
            &label,
            crate::evidence::Kind::Sent,
            format!("{FIRST_PART_BYTES} bytes; then {TRICKLE_BYTES} bytes at a time while waiting"),
        );
    } else {
        ctx.note(format!(
            "the download is read {TRICKLE_BYTES} bytes at a time while waiting"
        ));
    }
    Ok(Ok(Held {
        stream,
        upload,
        flowing: true,
    }))
}

/// Wait up to `wait` for a reply while the transfer keeps moving slowly.
async fn reply_while_flowing(
    s: &mut Session,
    held: &mut Held,
    wait: Duration,
) -> Result<Option<Reply>, ProbeError> {
    let deadline = tokio::time::Instant::now() + wait;
    let step = Duration::from_millis(200);
    let chunk = ftps_content(TRICKLE_BYTES);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        if let Some(reply) = s.conn.reply_within(left.min(step)).await? {
            return Ok(Some(reply));
        }
        if held.flowing {
            held.flowing = match held.upload {
                Some(_) => held.stream.write_some(&chunk, step).await.is_ok(),
                None => held.stream.read_some(TRICKLE_BYTES, step).await.is_ok(),
            };
        }
    }
}

/// End a held transfer: an upload is completed, a download read to its end.
async fn release(ctx: &Ctx, held: &mut Held) -> bool {
    let limit = ctx.env.limits.reply;
    match &held.upload {
        Some(_) => held
            .stream
            .write_and_close(&ftps_content(1024), limit)
            .await
            .is_ok(),
        None => held.stream.read_to_end(limit).await.2,
    }
}

/// Replies that arrive within `wait` of each other, up to a few.
async fn more_replies(s: &mut Session, wait: Duration) -> Vec<Reply> {
    let mut replies = Vec::new();
    while replies.len() < 4 {
        match s.conn.reply_within(wait).await {
            Ok(Some(r)) => replies.push(r),
            _ => break,
        }
    }
    replies
}

/// `extras.stat-during-transfer`.
pub async fn stat_during_transfer(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(crate::probe::tls::Versions::Any).await?;
    let mut held = match hold_transfer(ctx, &mut s).await? {
        Ok(h) => h,
        Err(outcome) => return Ok(outcome),
    };
    s.conn.send("STAT").await?;
    let status = reply_while_flowing(&mut s, &mut held, prompt(ctx)).await?;
    let finished = release(ctx, &mut held).await;
    let last = s.conn.reply().await;
    // A STAT answered only after the transfer: read its late reply.
    let late = match &status {
        None => more_replies(&mut s, ctx.env.limits.quiet).await,
        Some(_) => Vec::new(),
    };
    s.conn.quit().await;
    if let Some(path) = &held.upload {
        ctx.remove_fresh(path).await;
    }
    let last = crate::context::shown(&last);
    Ok(match status {
        None => Outcome::fail(format!(
            "no reply to STAT while the transfer ran (within {} s); then {last}{}",
            prompt(ctx).as_secs(),
            late.first()
                .map(|r| format!(", and only then {}", line_of(r)))
                .unwrap_or_default()
        )),
        Some(r) if r.code == 226 => Outcome::fail(format!(
            "the transfer's end came instead of a reply to STAT: {}",
            line_of(&r)
        )),
        Some(r) if r.is_completion() && finished && last.starts_with("226") => Outcome::pass(
            format!("STAT during the transfer: {}; then {last}", line_of(&r)),
        ),
        Some(r) if r.is_completion() => Outcome::warn(format!(
            "STAT answered ({}), but the transfer then ended with {last}",
            line_of(&r)
        )),
        Some(r) => Outcome::fail(format!("STAT during a transfer: {}", line_of(&r))),
    })
}

/// `extras.abor-during-transfer`.
pub async fn abor_during_transfer(ctx: &mut Ctx) -> Result<Outcome, ProbeError> {
    let mut s = ctx.session(crate::probe::tls::Versions::Any).await?;
    let mut held = match hold_transfer(ctx, &mut s).await? {
        Ok(h) => h,
        Err(outcome) => return Ok(outcome),
    };
    s.conn.send("ABOR").await?;
    let first = reply_while_flowing(&mut s, &mut held, prompt(ctx)).await?;
    let answered = first.is_some();
    if !answered {
        // Not read while the transfer ran: end it, and see what comes then.
        release(ctx, &mut held).await;
    }
    let mut codes: Vec<Reply> = first.into_iter().collect();
    codes.extend(more_replies(&mut s, ctx.env.limits.quiet).await);
    drop(held.stream);
    let noop = s.conn.cmd("NOOP").await;
    s.conn.quit().await;
    if let Some(path) = &held.upload {
        ctx.remove_fresh(path).await;
    }
    let seq = if codes.is_empty() {
        "no reply".to_string()
    } else {
        codes
            .iter()
            .map(line_of)
            .collect::<Vec<_>>()
            .join(", then ")
    };
    let goes_on = matches!(&noop, Ok(r) if r.code == 200);
    let numbers: Vec<u16> = codes.iter().map(|r| r.code).collect();
    Ok(if !answered {
        Outcome::fail(format!(
            "no reply to ABOR while the transfer ran (within {} s); after it ended: {seq}",
            prompt(ctx).as_secs()
        ))
    } else if !goes_on {
        Outcome::fail(format!(
            "{seq}; the session did not go on: NOOP {}",
            crate::context::shown(&noop)
        ))
    } else {
        match numbers.as_slice() {
            [426, 226] => Outcome::pass(format!("{seq}; NOOP 200")),
            [226] => Outcome::warn(format!("{seq}: only 226, as if the transfer had completed")),
            [226, 426] => Outcome::fail(format!("{seq}: the two replies in the wrong order")),
            _ => Outcome::fail(format!("{seq} (426 then 226 expected)")),
        }
    })
}
