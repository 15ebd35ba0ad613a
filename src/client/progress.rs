//! Where the client's output goes, and the live spinner of a watch.
//!
//! Three audiences: a person at a terminal gets one line per change and a
//! spinner below it that keeps the elapsed time moving between messages;
//! a pipe or a log gets the same lines without the spinner's control
//! characters; a script (`--output json`) gets one JSON object per line on
//! stdout and nothing else there. Results go to stdout; notes (resuming on
//! another gateway) and, in text mode, errors go to stderr. The spinner is
//! a few ANSI sequences (`\r`, clear line), not a TUI library: it draws one
//! line and must leave the terminal clean when the watch ends or is
//! interrupted.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use serde_json::Value;
use tokio::time::Instant;
use tonic::{Status, Streaming};

use super::{Failure, Outcome, OutputFormat, ServerArgs, json, render};
use crate::pb;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);
/// Clears the current terminal line and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

pub struct Progress {
    format: OutputFormat,
    /// Text on a terminal: draw the spinner.
    spinner: bool,
    /// A spinner line is on screen and must be cleared before other output.
    drawn: bool,
    frame: usize,
    /// Phase, gateway status and pending fields of the last line printed: a
    /// resumed watch starts with the state already shown, not worth a line.
    last_line: Option<(i32, i32, Vec<String>)>,
}

impl Progress {
    pub fn new(format: OutputFormat) -> Self {
        let terminal =
            std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Self {
            format,
            spinner: format == OutputFormat::Text && terminal,
            drawn: false,
            frame: 0,
            last_line: None,
        }
    }

    /// Removes the spinner line, if one is drawn.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{CLEAR_LINE}");
            let _ = out.flush();
            self.drawn = false;
        }
    }

    /// Writes to stdout. Errors (a closed pipe) are ignored: there is no one
    /// left to tell, and the exit code still says how the command ended.
    fn out(&mut self, text: &str) {
        self.clear();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn json(&mut self, value: &Value) {
        self.out(&format!("{value}\n"));
    }

    /// A note for the person watching (stderr in every format).
    pub fn note(&mut self, text: &str) {
        self.clear();
        eprintln!("sslvpn-gateway client: {text}");
    }

    pub fn status(&mut self, r: &pb::GetSslVpnServerStatusResponse) {
        match self.format {
            OutputFormat::Json => self.json(&json::status_response(r)),
            OutputFormat::Text => self.out(&render::status(r)),
        }
    }

    pub fn modified(
        &mut self,
        r: &pb::ModifySslVpnServerResponse,
        target: &ServerArgs,
        watching: bool,
    ) {
        match self.format {
            OutputFormat::Json => self.json(&json::modify_response(r)),
            OutputFormat::Text => self.out(&render::modified(
                r,
                &target.region,
                &target.server,
                watching,
            )),
        }
    }

    /// Reports a failure and returns its outcome.
    pub fn failure(&mut self, failure: &Failure) -> Outcome {
        let outcome = failure.outcome();
        match (self.format, failure) {
            (OutputFormat::Json, Failure::Status(s)) => self.json(&json::error(s)),
            (OutputFormat::Json, Failure::Usage(m)) => {
                self.json(&json::local_error("BAD_INPUT", m))
            }
            (OutputFormat::Json, Failure::Unreachable(m)) => {
                self.json(&json::local_error("UNAVAILABLE", m))
            }
            (OutputFormat::Text, Failure::Status(s)) => {
                self.clear();
                eprint!("{}", render::error(s));
            }
            (OutputFormat::Text, Failure::Usage(m)) => {
                self.clear();
                eprintln!("error: {m}");
            }
            (OutputFormat::Text, Failure::Unreachable(m)) => {
                self.clear();
                eprintln!(
                    "error: {m}\n  what to do: {}",
                    render::advice(tonic::Code::Unavailable)
                );
            }
        }
        outcome
    }

    /// The client's own `--timeout` ran out between resumes.
    pub fn timed_out_locally(&mut self, budget: Duration) -> Outcome {
        let message = format!(
            "no completion within --timeout {}; the change may still complete: watch again with the same --operation-id",
            render::elapsed(budget)
        );
        match self.format {
            OutputFormat::Json => self.json(&json::local_error("DEADLINE_EXCEEDED", &message)),
            OutputFormat::Text => {
                self.clear();
                eprintln!("timed out: {message}");
            }
        }
        Outcome::TimedOut
    }

    /// Reads a watch stream to its terminal message (or, with `follow`, to
    /// its end), showing each message. Ok(Some) is the terminal outcome;
    /// Ok(None) a stream that ended with OK before one; Err the status the
    /// stream broke with (the caller decides whether to resume).
    pub async fn follow(
        &mut self,
        stream: &mut Streaming<pb::WatchSslVpnServerResponse>,
        follow: bool,
    ) -> Result<Option<Outcome>, Status> {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut current: Option<(pb::WatchSslVpnServerResponse, Instant)> = None;
        let mut outcome = None;
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(m)) => {
                        self.message(&m);
                        let terminal = Outcome::from_phase(m.phase());
                        if terminal.is_some() {
                            outcome = terminal;
                            if !follow {
                                return Ok(outcome);
                            }
                        }
                        current = Some((m, Instant::now()));
                    }
                    Ok(None) => return Ok(outcome),
                    Err(status) => return Err(status),
                },
                _ = ticker.tick(), if self.spinner => {
                    if let Some((m, at)) = &current {
                        self.draw(m, at.elapsed());
                    }
                }
            }
        }
    }

    fn message(&mut self, m: &pb::WatchSslVpnServerResponse) {
        match self.format {
            OutputFormat::Json => self.json(&json::watch_message(m)),
            OutputFormat::Text => {
                let key = (
                    m.phase,
                    m.gateway.as_ref().map_or(0, |g| g.status),
                    m.pending_fields.clone(),
                );
                if self.last_line.as_ref() == Some(&key) {
                    return;
                }
                self.last_line = Some(key);
                let elapsed = render::proto_duration(m.elapsed.as_ref());
                let mut text = render::watch_line(m, elapsed);
                text.push('\n');
                if Outcome::from_phase(m.phase()).is_some() {
                    text.push_str(&render::watch_end(m));
                }
                self.out(&text);
            }
        }
    }

    /// The spinner line: phase, gateway status, elapsed time moving on from
    /// the last message, the fields still pending.
    fn draw(&mut self, m: &pb::WatchSslVpnServerResponse, since: Duration) {
        if Outcome::from_phase(m.phase()).is_some() {
            // Finished (a --follow stream): nothing is in progress.
            return;
        }
        self.frame = (self.frame + 1) % FRAMES.len();
        let elapsed = render::proto_duration(m.elapsed.as_ref()) + since;
        let status = m
            .gateway
            .as_ref()
            .map(|g| render::gateway_status(g.status))
            .unwrap_or_else(|| "?".to_owned());
        let mut line = format!(
            "{} {} · gateway {status} · {}",
            FRAMES[self.frame],
            render::phase(m.phase),
            render::elapsed(elapsed),
        );
        if !m.pending_fields.is_empty() {
            line.push_str(&format!(" · pending: {}", m.pending_fields.join(", ")));
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{CLEAR_LINE}{line}");
        let _ = out.flush();
        self.drawn = true;
    }
}
