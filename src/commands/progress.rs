//! Progress on stderr: an updating line when both stdout and stderr are terminals, plain lines otherwise
//! (piped or redirected output, CI logs).

use std::io::{IsTerminal, Write};

use crate::engine::{Event, Stage};

pub struct Progress {
    tty: bool,
    last_stage: Option<(String, Stage)>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
            last_stage: None,
        }
    }

    pub fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        match e {
            Event::Note(m) => {
                if self.tty {
                    let _ = write!(err, "\r\x1b[2K");
                }
                let _ = writeln!(err, "{m}");
            }
            Event::Warning(m) => {
                if self.tty {
                    let _ = write!(err, "\r\x1b[2K");
                }
                let _ = writeln!(err, "warning: {m}");
            }
            Event::Progress {
                task,
                stage,
                done,
                total,
            } => {
                let model = task.to_string();
                let line = format!("{model}: {} {done}/{total}", stage.label());
                if self.tty {
                    let _ = write!(err, "\r\x1b[2K{line}");
                    if done == total {
                        let _ = writeln!(err);
                    }
                } else {
                    let key = (model.clone(), stage);
                    let new_stage = self.last_stage.as_ref() != Some(&key);
                    if new_stage || done == total || done % 10 == 0 {
                        let _ = writeln!(err, "{line}");
                    }
                    self.last_stage = Some(key);
                }
            }
            Event::Opened { .. }
            | Event::Accuracy { .. }
            | Event::Series { .. }
            | Event::ControlStep { .. }
            | Event::Segment { .. }
            | Event::RowDone(_) => {}
        }
    }
}
