//! Self-contained HTML reports: one file with its figures inline (SVG), its tables and its
//! facts, no script, no stylesheet or font from the network, so that it opens anywhere.
//! The list of figures at the top names each figure by its id; the `report` test checks that
//! every figure listed is there and has drawn data.

use std::fmt::Write as _;

/// A report being assembled.
pub struct Report {
    title: String,
    facts: Vec<(String, String)>,
    sections: Vec<Section>,
}

enum Section {
    Figure {
        id: String,
        caption: String,
        svg: Result<String, String>,
    },
    Table {
        heading: String,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Text {
        heading: String,
        lines: Vec<String>,
    },
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:0.9em}\
th{background:#f4f4f4}figure{margin:1.5em 0}figcaption{font-size:0.9em;color:#555}\
.facts td:first-child{font-weight:bold}.error{color:#b00}pre{background:#f8f8f8;padding:1em;white-space:pre-wrap}";

impl Report {
    pub fn new(title: impl Into<String>) -> Report {
        Report {
            title: title.into(),
            facts: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// A line of the facts table at the top (scenario, seed, commit, ...).
    pub fn fact(&mut self, name: &str, value: impl Into<String>) -> &mut Report {
        self.facts.push((name.into(), value.into()));
        self
    }

    /// A figure; a figure that could not be drawn says why in its place.
    pub fn figure(&mut self, id: &str, caption: &str, svg: Result<String, String>) -> &mut Report {
        self.sections.push(Section::Figure {
            id: id.into(),
            caption: caption.into(),
            svg,
        });
        self
    }

    pub fn table(&mut self, heading: &str, header: &[&str], rows: Vec<Vec<String>>) -> &mut Report {
        self.sections.push(Section::Table {
            heading: heading.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        });
        self
    }

    pub fn text(&mut self, heading: &str, lines: Vec<String>) -> &mut Report {
        self.sections.push(Section::Text {
            heading: heading.into(),
            lines,
        });
        self
    }

    /// The ids and captions of the figures, in order.
    pub fn figures(&self) -> Vec<(&str, &str)> {
        self.sections
            .iter()
            .filter_map(|s| match s {
                Section::Figure { id, caption, .. } => Some((id.as_str(), caption.as_str())),
                _ => None,
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let mut h = String::new();
        let t = escape(&self.title);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
        );
        h.push_str("<table class=\"facts\">\n");
        for (k, v) in &self.facts {
            let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
        }
        h.push_str("</table>\n<nav>\n<h2>Figures</h2>\n<ul class=\"figures\">\n");
        for (id, caption) in self.figures() {
            let _ = writeln!(
                h,
                "<li><a href=\"#{}\">{}</a></li>",
                escape(id),
                escape(caption)
            );
        }
        h.push_str("</ul>\n</nav>\n");
        for s in &self.sections {
            render_section(&mut h, s);
        }
        h.push_str("</body>\n</html>\n");
        h
    }
}

fn render_section(h: &mut String, s: &Section) {
    match s {
        Section::Figure { id, caption, svg } => {
            let _ = writeln!(h, "<figure id=\"{}\">", escape(id));
            match svg {
                Ok(svg) => {
                    // The SVG inline, without its XML declaration.
                    let start = svg.find("<svg").unwrap_or(0);
                    h.push_str(&svg[start..]);
                    h.push('\n');
                }
                Err(e) => {
                    let _ = writeln!(
                        h,
                        "<p class=\"error\">this figure could not be drawn: {}</p>",
                        escape(e)
                    );
                }
            }
            let _ = writeln!(h, "<figcaption>{}</figcaption>\n</figure>", escape(caption));
        }
        Section::Table {
            heading,
            header,
            rows,
        } => {
            let _ = writeln!(h, "<h2>{}</h2>\n<table>\n<tr>", escape(heading));
            for c in header {
                let _ = write!(h, "<th>{}</th>", escape(c));
            }
            h.push_str("</tr>\n");
            for r in rows {
                h.push_str("<tr>");
                for c in r {
                    let _ = write!(h, "<td>{}</td>", escape(c));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        }
        Section::Text { heading, lines } => {
            let _ = writeln!(h, "<h2>{}</h2>\n<pre>", escape(heading));
            for l in lines {
                h.push_str(&escape(l));
                h.push('\n');
            }
            h.push_str("</pre>\n");
        }
    }
}

/// Writes `report` to `path`.
pub fn write(report: &Report, path: &std::path::Path) -> Result<(), String> {
    std::fs::write(path, report.render())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_a_figure_that_failed_says_why() {
        let mut r = Report::new("a <b> & c");
        r.fact("seed", "1")
            .figure("fig-x", "x", Err("no data <here>".into()));
        let html = r.render();
        assert!(html.contains("<title>a &lt;b&gt; &amp; c</title>"));
        assert!(html.contains("no data &lt;here&gt;"));
        assert!(html.contains("<a href=\"#fig-x\">x</a>"));
    }
}
