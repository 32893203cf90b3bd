//! The real binary in a real terminal (tmux): open the TUI on a short experiment with a Whisper and a BLIP
//! entry, run it, see both kinds' rows with their numbers (the BLIP's VQA accuracy on screen), save the
//! report (both kinds), quit, and check the terminal came back (alternate screen left, cursor shown). Set
//! QUANTBENCH_TUI_CAPTURE=DIR to keep the screens captured mid-run and at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (apt install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", &self.session])
    }

    fn keys(&self, keys: &str) {
        self.cmd(&["send-keys", "-t", &self.session, keys]);
    }

    /// Polls the screen until `done` holds; panics with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn keep(name: &str, screen: &str) {
    if let Some(dir) = std::env::var_os("QUANTBENCH_TUI_CAPTURE") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), screen).unwrap();
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn tui_runs_saves_and_quits_in_a_real_terminal() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("short.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"tui-e2e\"\n\
             [measure]\nwarmup = 1\nruns = 5\ndecoder_cache_len = 8\ne2e_passes = 1\n\
             [[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nlimit = 3\n\
             variants = [\"dynamic\"]\n\
             [models.thresholds]\nmax_accuracy_drop_points = 50.0\n\
             [[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\nlimit = 20\n\
             latency_samples = 5\nvariants = [\"seed\"]\n\
             [models.thresholds]\nmax_accuracy_drop_points = 50.0\n",
            repo.join("datasets/speech-en/manifest.jsonl").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("reports");
    let script = format!(
        "QUANTBENCH_TUI_STATS=1 '{}' --config '{}' --out '{}'; echo QB_EXIT=$?; sleep 120",
        env!("CARGO_BIN_EXE_quantbench"),
        config.display(),
        out.display()
    );
    // A private tmux server: it inherits this process's environment (asset cache, ORT path).
    let t = Tmux {
        socket: format!("quantbench-test-{}", std::process::id()),
        session: "tui".into(),
    };
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);

    let idle = t.wait_for("the TUI", Duration::from_secs(30), |s| {
        s.contains("results") && s.contains("idle")
    });
    assert!(
        idle.contains("dynamic") && idle.contains("pending"),
        "{idle}"
    );

    t.keys("r");
    let mid = t.wait_for("a measurement in progress", Duration::from_secs(300), |s| {
        s.contains("measuring") || s.contains("evaluating")
    });
    keep("mid-run.txt", &mid);
    assert!(mid.contains("running"), "{mid}");

    // Keys answer while the model runs: the help overlay opens and closes.
    t.keys("?");
    t.wait_for("the help overlay", Duration::from_secs(5), |s| {
        s.contains("stop the running job")
    });
    t.keys("Escape");
    t.wait_for("the help to close", Duration::from_secs(5), |s| {
        !s.contains("stop the running job")
    });

    let end = t.wait_for("both models' results", Duration::from_secs(600), |s| {
        s.lines()
            .any(|l| l.contains("dynamic") && l.contains("done") && l.contains('×'))
            && s.lines().any(|l| l.contains("seed") && l.contains("done"))
            && s.contains("idle")
    });
    keep("finished.txt", &end);
    assert!(end.contains("✓ pass"), "threshold verdict shown:\n{end}");
    assert!(
        end.contains("blip-easyvqa") && end.contains("(blip)"),
        "{end}"
    );
    let seed = end
        .lines()
        .find(|l| l.contains("seed") && l.contains("done"))
        .unwrap();
    assert!(
        seed.contains('%') && seed.contains('×'),
        "BLIP accuracy and speedup on screen:\n{end}"
    );

    t.keys("s");
    t.wait_for("the save to be logged", Duration::from_secs(10), |s| {
        s.contains("report saved")
    });
    let md = files(&out, "md");
    let json = files(&out, "json");
    assert_eq!((md.len(), json.len()), (1, 1), "one markdown + one JSON");
    let text = std::fs::read_to_string(&md[0]).unwrap();
    assert!(text.contains("# quantbench report: tui-e2e"), "{text}");
    let result = quantbench::results::ExperimentResult::from_json(
        &std::fs::read_to_string(&json[0]).unwrap(),
    )
    .unwrap();
    assert!(result.complete);
    let rows: Vec<(&str, &str)> = result
        .rows
        .iter()
        .map(|m| (m.model.as_str(), m.variant.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("whisper-tiny.en", "fp32"),
            ("whisper-tiny.en", "dynamic"),
            ("blip-easyvqa", "fp32"),
            ("blip-easyvqa", "seed")
        ]
    );
    assert_eq!(result.rows[0].accuracy.n, Some(3));
    assert_eq!(result.rows[1].series["encoder"].stats.runs_ms.len(), 5);
    assert!(result.rows[1].vs_fp32.is_some());
    assert_eq!(result.rows[3].accuracy.n, Some(20));
    assert!(result.rows[3].accuracy.value.is_some());
    assert!(result.rows[3].series.contains_key("caption"));

    // Resizing redraws in the other layout: collapsed panes at 80×24, every pane at 160×48.
    t.cmd(&["resize-window", "-t", "tui", "-x", "80", "-y", "24"]);
    t.wait_for("the collapsed layout", Duration::from_secs(5), |s| {
        s.contains("[ detail ]") && s.lines().count() <= 24
    });
    t.cmd(&["resize-window", "-t", "tui", "-x", "160", "-y", "48"]);
    t.wait_for("the wide layout", Duration::from_secs(5), |s| {
        s.contains(" log ") && s.contains(" experiment ") && s.contains("[ results ]")
    });

    // A second run of the selected row (FP32 alone), stopped from the keyboard.
    t.keys("Enter");
    t.wait_for("the second run", Duration::from_secs(60), |s| {
        s.contains("running") && (s.contains("measuring") || s.contains("loading"))
    });
    t.keys("x");
    let stopped = t.wait_for("the run to stop", Duration::from_secs(60), |s| {
        s.contains("run stopped") && s.contains("idle")
    });
    assert!(
        stopped
            .lines()
            .any(|l| l.contains("fp32") && l.contains("stopped")),
        "{stopped}"
    );
    assert!(
        stopped
            .lines()
            .any(|l| l.contains("dynamic") && l.contains("done")),
        "rows outside the run keep their results:\n{stopped}"
    );

    // Quitting during a run asks first, then stops the run and leaves.
    t.keys("Enter");
    t.wait_for("a third run", Duration::from_secs(60), |s| {
        s.contains("running")
    });
    t.keys("q");
    t.wait_for("the quit confirmation", Duration::from_secs(5), |s| {
        s.contains("Stop it and quit?")
    });
    t.keys("y");
    let after = t.wait_for("the shell after quitting", Duration::from_secs(20), |s| {
        s.contains("QB_EXIT=")
    });
    assert!(after.contains("QB_EXIT=0"), "{after}");
    // Quitting mid-run saved what had finished as a partial report, beside the earlier save.
    assert!(
        after.contains("partial report (complete: false)"),
        "{after}"
    );
    let json = files(&out, "json");
    assert_eq!((files(&out, "md").len(), json.len()), (2, 2), "{json:?}");
    let partial: Vec<quantbench::results::ExperimentResult> = json
        .iter()
        .map(|p| {
            quantbench::results::ExperimentResult::from_json(&std::fs::read_to_string(p).unwrap())
                .unwrap()
        })
        .filter(|r| !r.complete)
        .collect();
    assert_eq!(partial.len(), 1);
    assert!(
        !partial[0]
            .rows
            .iter()
            .any(|r| r.model == "whisper-tiny.en" && r.variant == "fp32"),
        "the stopped row is not among the finished ones"
    );
    let stats = after
        .lines()
        .find(|l| l.starts_with("quantbench tui:"))
        .unwrap_or_else(|| panic!("frame statistics line missing:\n{after}"));
    println!("{stats}");
    keep("frames.txt", stats);
    assert!(!after.contains("results"), "TUI left on screen:\n{after}");
    let flags = t.cmd(&[
        "display-message",
        "-p",
        "-t",
        "tui",
        "#{alternate_on} #{cursor_flag}",
    ]);
    assert_eq!(flags.trim(), "0 1", "alternate screen off, cursor visible");
}
