//! The engine on a worker thread. Everything the UI loop hears arrives as one [`Msg`] on one channel: keys
//! from the input thread, engine events and the end of a run from the worker.

use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use ratatui::crossterm::event;

use super::app::Outcome;
use crate::config::Experiment;
use crate::engine::{self, Cancel, Cancelled, Context, Provenance};

/// The engine thread's name; the TUI's panic hook leaves the terminal alone for it.
pub const ENGINE_THREAD: &str = "quantbench-engine";

pub enum Msg {
    Input(event::Event),
    Engine(Box<engine::Event>),
    Finished(Outcome),
}

/// A running experiment and the switch that stops it.
pub struct Worker {
    pub cancel: Cancel,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn start(exp: Experiment, provenance: Provenance, ctx: Context, tx: Sender<Msg>) -> Worker {
        let cancel = ctx.cancel.clone();
        let handle = std::thread::Builder::new()
            .name(ENGINE_THREAD.into())
            .spawn(move || {
                let events = tx.clone();
                let mut sink = |e: engine::Event| {
                    let _ = events.send(Msg::Engine(Box::new(e)));
                };
                // A panic in the engine ends the run as a failure; the UI goes on.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine::run_experiment(&exp, &provenance, &ctx, &mut sink)
                }));
                let outcome = match run {
                    Ok(Ok(r)) if !r.complete => Outcome::Stopped,
                    Ok(Ok(_)) => Outcome::Done,
                    Ok(Err(e)) if e.chain().any(|c| c.is::<Cancelled>()) => Outcome::Stopped,
                    Ok(Err(e)) => Outcome::Failed(crate::errors::one_line(&e)),
                    Err(panic) => Outcome::Failed(format!(
                        "internal error in the engine: {}",
                        panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "panic".into())
                    )),
                };
                let _ = tx.send(Msg::Finished(outcome));
            })
            .expect("the OS starts a thread");
        Worker {
            cancel,
            handle: Some(handle),
        }
    }

    /// Waits for the thread once it has sent `Finished`.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Reads terminal input until the receiver is gone.
pub fn spawn_input(tx: Sender<Msg>) {
    std::thread::Builder::new()
        .name("quantbench-input".into())
        .spawn(move || {
            while let Ok(e) = event::read() {
                if tx.send(Msg::Input(e)).is_err() {
                    break;
                }
            }
        })
        .expect("the OS starts a thread");
}
