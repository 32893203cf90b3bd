//! A gate's files for CI systems: JUnit XML (a testsuite per model, a testcase per verdict) and a short
//! markdown verdict table.

use quick_xml::events::BytesText;
use quick_xml::Writer;

use crate::results::{ExperimentResult, Row, Verdict};

fn value_text(v: &Verdict) -> String {
    v.value
        .map_or("not measured".to_string(), |x| format!("{x:.3}"))
}

fn case_name(r: &Row, v: &Verdict) -> String {
    format!("{} {}", r.variant, v.check)
}

/// JUnit XML of every verdict; an incomplete report gets one failing `complete` testcase.
pub fn junit(r: &ExperimentResult) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let groups = r.groups();
    let verdicts = |rows: &[&Row]| rows.iter().map(|r| r.verdicts.len()).sum::<usize>();
    let failures = |rows: &[&Row]| {
        rows.iter()
            .map(|r| r.verdicts.iter().filter(|v| !v.pass).count())
            .sum::<usize>()
    };
    let incomplete = usize::from(!r.complete);
    let all: Vec<&Row> = r.rows.iter().collect();
    let result = w
        .create_element("testsuites")
        .with_attribute(("name", r.name.as_str()))
        .with_attribute(("tests", (verdicts(&all) + incomplete).to_string().as_str()))
        .with_attribute((
            "failures",
            (failures(&all) + incomplete).to_string().as_str(),
        ))
        .write_inner_content(|w| {
            if !r.complete {
                w.create_element("testsuite")
                    .with_attribute(("name", "report"))
                    .with_attribute(("tests", "1"))
                    .with_attribute(("failures", "1"))
                    .write_inner_content(|w| {
                        w.create_element("testcase")
                            .with_attribute(("name", "complete"))
                            .with_attribute(("classname", "report"))
                            .write_inner_content(|w| {
                                let msg = format!(
                                    "the run was stopped{}",
                                    r.interrupted
                                        .as_deref()
                                        .map(|m| format!(" during {m}"))
                                        .unwrap_or_default()
                                );
                                w.create_element("failure")
                                    .with_attribute(("message", msg.as_str()))
                                    .write_empty()?;
                                Ok(())
                            })?;
                        Ok(())
                    })?;
            }
            for g in &groups {
                let model = g[0].model.as_str();
                w.create_element("testsuite")
                    .with_attribute(("name", model))
                    .with_attribute(("tests", verdicts(g).to_string().as_str()))
                    .with_attribute(("failures", failures(g).to_string().as_str()))
                    .write_inner_content(|w| {
                        for row in g {
                            for v in &row.verdicts {
                                let name = case_name(row, v);
                                let case = w
                                    .create_element("testcase")
                                    .with_attribute(("name", name.as_str()))
                                    .with_attribute(("classname", model));
                                if v.pass {
                                    case.write_empty()?;
                                    continue;
                                }
                                case.write_inner_content(|w| {
                                    let msg =
                                        format!("{} {} (got {})", v.check, v.limit, value_text(v));
                                    w.create_element("failure")
                                        .with_attribute(("message", msg.as_str()))
                                        .write_text_content(BytesText::new(&msg))?;
                                    Ok(())
                                })?;
                            }
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        });
    // Writing into a Vec cannot fail.
    debug_assert!(result.is_ok());
    let mut out = r#"<?xml version="1.0" encoding="UTF-8"?>"#.to_string() + "\n";
    out.push_str(&String::from_utf8_lossy(&w.into_inner()));
    out.push('\n');
    out
}

/// A short markdown table of every verdict, with the gate's outcome first.
pub fn verdict_table(r: &ExperimentResult) -> String {
    let failures = r.failures();
    let mut out = format!("## Gate: {}\n\n", r.name);
    out.push_str(&match (r.complete, failures.is_empty()) {
        (false, _) => format!(
            "**INCOMPLETE** — the run was stopped{}; {} rows finished.\n\n",
            r.interrupted
                .as_deref()
                .map(|m| format!(" during {m}"))
                .unwrap_or_default(),
            r.rows.len()
        ),
        (true, true) => "**PASS** — every verdict holds.\n\n".to_string(),
        (true, false) => format!("**FAIL** — {} verdicts failed.\n\n", failures.len()),
    });
    out.push_str(
        "| model | variant | check | limit | value | result |\n|---|---|---|---:|---:|---|\n",
    );
    for row in &r.rows {
        for v in &row.verdicts {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {} |\n",
                row.model,
                row.variant,
                v.check,
                v.limit,
                value_text(v),
                if v.pass { "pass" } else { "**FAIL**" }
            ));
        }
    }
    if r.rows.iter().all(|row| row.verdicts.is_empty()) {
        out.push_str("| — | — | no thresholds set | | | |\n");
    }
    out
}
