//! Keys to actions. Vim keys and arrows do the same; the settings overlay reads h/l as "change".

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::Action;

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::ForceQuit);
    }
    Some(match key.code {
        KeyCode::Char('r') => Action::RunAll,
        KeyCode::Enter => Action::RunSelected,
        KeyCode::Char('x') => Action::Stop,
        KeyCode::Char('s') => Action::Save,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('o') => Action::Settings,
        KeyCode::Char('y') => Action::Yes,
        KeyCode::Char('n') => Action::No,
        KeyCode::Esc => Action::Close,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::Tab => Action::NextPane,
        KeyCode::BackTab => Action::PrevPane,
        _ => return None,
    })
}

/// The help overlay's lines: key, what it does.
pub const HELP: &[(&str, &str)] = &[
    ("r", "run the whole experiment"),
    ("Enter", "run the selected row (with its FP32 baseline)"),
    ("x", "stop the running job after its current step"),
    ("s", "save the report now (markdown + JSON)"),
    ("o", "measurement settings: threads, warm-up, runs, passes"),
    ("↑↓ / j k", "select a row; scroll the detail and log panes"),
    ("←→ / h l, Tab", "switch pane"),
    ("?", "this help"),
    ("q", "quit (asks while a job runs, then stops it)"),
    ("Ctrl-C", "stop any job and quit at once"),
];
