//! `scorefield reference`: the reference tables of docs/reference/, written from the code that
//! defines them — each subcommand's flags from clap, the sampler table from the library's catalog
//! and a model card's step counts — into marked blocks of the Markdown files, so that the docs
//! cannot drift from the program (`--check`, run by tests/cli.rs, fails on any difference).
//!
//! A block is `<!-- flags: COMMAND -->` or `<!-- samplers: CARD -->`, a table, `<!-- end -->`.

use anyhow::anyhow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Args, CommandFactory};
use scorefield::sampling::catalog;

use super::load_card;

#[derive(Args)]
pub(crate) struct ReferenceArgs {
    /// Markdown files whose marked blocks to rewrite.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Change nothing; fail if a block is not what the code says.
    #[arg(long)]
    check: bool,
}

const END: &str = "<!-- end -->";

pub(crate) fn run(a: ReferenceArgs) -> anyhow::Result<()> {
    let flags = flag_tables();
    let mut stale = Vec::new();
    for file in &a.files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let filled = fill(&text, &flags).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        if filled == text {
            continue;
        }
        if a.check {
            stale.push(file.display().to_string());
        } else {
            std::fs::write(file, filled).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            println!("rewrote {}", file.display());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{} differ from the code; run `scorefield reference {}`", stale.join(", "), stale.join(" ")))
    }
}

/// `text` with every marked block's table written afresh; an unknown command or a block
/// without its end is an error.
fn fill(text: &str, flags: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!-- ") {
        let head_end = rest[start..].find("-->").ok_or_else(|| anyhow::anyhow!("a `<!--` without `-->`"))? + start + 3;
        let head = rest[start + 5..head_end - 3].trim();
        let table = if let Some(command) = head.strip_prefix("flags:") {
            flags.get(command.trim()).cloned().ok_or_else(|| anyhow!("`{head}`: no such command"))?
        } else if let Some(card) = head.strip_prefix("samplers:") {
            samplers(Path::new(card.trim()))?
        } else {
            out.push_str(&rest[..head_end]);
            rest = &rest[head_end..];
            continue;
        };
        let end = rest[head_end..].find(END).ok_or_else(|| anyhow!("`{head}` has no `{END}`"))? + head_end;
        out.push_str(&rest[..head_end]);
        out.push('\n');
        out.push_str(&table);
        out.push_str(END);
        rest = &rest[end + END.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// Each subcommand's flags: a row per flag with its default and help.
pub(crate) fn flag_tables() -> BTreeMap<String, String> {
    let command = super::Cli::command();
    let mut tables = BTreeMap::new();
    for sub in command.get_subcommands() {
        let mut out = String::from("| flag | default | meaning |\n|---|---|---|\n");
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)) {
            let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
            let value = arg.get_value_names().and_then(|v| v.first()).map(|v| v.to_string()).unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
            let name = match arg.get_long() {
                Some(long) if takes_value => format!("`--{long} {value}`"),
                Some(long) => format!("`--{long}`"),
                None => format!("`{value}`"),
            };
            let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            let default = match () {
                _ if arg.is_required_set() => "required".to_string(),
                _ if !takes_value => "off".to_string(),
                _ if defaults.is_empty() => "—".to_string(),
                _ => format!("`{}`", defaults.join(",")),
            };
            let mut help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            let choices: Vec<String> = arg.get_possible_values().iter().filter(|p| !p.is_hide_set()).map(|p| format!("`{}`", p.get_name())).collect();
            if takes_value && !choices.is_empty() {
                if !help.is_empty() && !help.ends_with('.') {
                    help.push('.');
                }
                let _ = write!(help, " One of {}.", choices.join(", "));
            }
            let _ = writeln!(out, "| {name} | {default} | {} |", cell(&help));
        }
        tables.insert(sub.get_name().to_string(), out);
    }
    tables
}

/// The samplers a model offers, its default first, with its step counts.
pub(crate) fn samplers(model: &Path) -> anyhow::Result<String> {
    let card = load_card(model)?;
    let mut out = String::from("| name | label | paper | one step costs | options | default steps | fewest steps | one measured count below the fewest |\n|---|---|---|---|---|---:|---:|---|\n");
    for s in catalog::samplers_for(&card.sde, &card.parameterisation, &card.sampling) {
        let options = if s.about.options.is_empty() { "—".to_string() } else { s.about.options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ") };
        let (default, min, why) = if s.about.takes_steps { (s.default_steps.to_string(), s.min_steps.to_string(), cell(&s.min_steps_why)) } else { ("—".into(), "—".into(), "—".into()) };
        let _ = writeln!(out, "| `{}` | {} | {} | {} | {options} | {default} | {min} | {why} |", s.name, cell(s.about.label), cell(s.about.paper), cell(s.about.step));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block is replaced by its table, text around it is kept, and a stale block is seen.
    #[test]
    fn blocks_are_filled_and_the_rest_is_kept() {
        let flags = BTreeMap::from([("init".to_string(), "| a |\n".to_string())]);
        let doc = "intro <!-- a comment --> kept\n<!-- flags: init -->\nold table\n<!-- end -->\nafter\n";
        let filled = fill(doc, &flags).unwrap();
        assert_eq!(filled, "intro <!-- a comment --> kept\n<!-- flags: init -->\n| a |\n<!-- end -->\nafter\n");
        assert_eq!(fill(&filled, &flags).unwrap(), filled, "a filled file is unchanged");
        assert!(fill("<!-- flags: nope -->\n<!-- end -->", &flags).unwrap_err().to_string().contains("no such command"));
        assert!(fill("<!-- flags: init -->\nno end", &flags).unwrap_err().to_string().contains("no `<!-- end -->`"));
    }

    /// Every subcommand has a table, and its flags' help made it into the rows.
    #[test]
    fn every_subcommand_has_a_flag_table() {
        let tables = flag_tables();
        for sub in super::super::Cli::command().get_subcommands() {
            assert!(tables.contains_key(sub.get_name()), "{}", sub.get_name());
        }
        assert!(tables["sample"].contains("| `--sampler SAMPLER` | — |"), "{}", tables["sample"]);
        assert!(tables["sample"].contains("`sampling.sampler`"));
    }
}
