//! CSV downloads of every table on the dashboard.
//!
//! A table's CSV is cut from the very page the person sees (same answers, same filters, same
//! page parameters), so it holds the same rows, columns and printed values as the table, never a
//! second computation that could drift from it. Each `<table>` gets an id from the heading above
//! it (`endpoints`, `error-classes`; `-2` on a repeat) and a "Download CSV" link to
//! `<the page's URL>&format=csv&table=<id>`; pages need no code of their own for it.

/// One table of a rendered page: its id and where its markup lies.
struct Found {
    id: String,
    /// Byte offset of `<table`.
    start: usize,
    /// Byte offset just past `</table>`.
    end: usize,
}

fn tables(html: &str) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    let mut from = 0;
    while let Some(at) = html[from..].find("<table") {
        let start = from + at;
        let end = html[start..]
            .find("</table>")
            .map_or(html.len(), |e| start + e + "</table>".len());
        let base = heading_before(html, start).map_or_else(|| "table".to_owned(), |h| slug(&h));
        let repeats = found
            .iter()
            .filter(|f| f.id == base || f.id.starts_with(&format!("{base}-")))
            .count();
        let id = if repeats == 0 {
            base
        } else {
            format!("{base}-{}", repeats + 1)
        };
        found.push(Found { id, start, end });
        from = end;
    }
    found
}

/// The text of the last `<h2>` or `<h3>` before `at`.
fn heading_before(html: &str, at: usize) -> Option<String> {
    let before = &html[..at];
    let open = before.rfind("<h2").max(before.rfind("<h3"))?;
    let inner = &before[open..];
    let text_start = inner.find('>')? + 1;
    let text_end = inner.find("</h")?;
    (text_start <= text_end).then(|| text(&inner[text_start..text_end]))
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "table".to_owned()
    } else {
        out
    }
}

/// The text of a fragment: tags dropped, maud's escapes undone, white space collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A page with each table given its id and a download link; `base` is the page's URL with its
/// query (`…?a=1&`, ending so that `format=csv` can follow).
pub fn annotate(html: &str, base: &str) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    for table in tables(html) {
        out.push_str(&html[copied..table.start]);
        let href = maud::html!((format!("{base}format=csv&table={}", table.id))).into_string();
        out.push_str(&format!(
            r#"<p class="export"><a href="{href}" download>Download CSV</a></p><table id="table-{}""#,
            table.id
        ));
        copied = table.start + "<table".len();
    }
    out.push_str(&html[copied..]);
    out
}

/// The ids of a page's tables, in order.
pub fn ids(html: &str) -> Vec<String> {
    tables(html).into_iter().map(|t| t.id).collect()
}

/// The rows of table `id` (header row first), each cell as printed.
pub fn rows(html: &str, id: &str) -> Option<Vec<Vec<String>>> {
    let table = tables(html).into_iter().find(|t| t.id == id)?;
    let markup = &html[table.start..table.end];
    let rows = markup
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or(row);
            row.split("<t")
                .skip(1)
                .filter(|cell| ["d>", "d ", "h>", "h "].iter().any(|p| cell.starts_with(p)))
                .map(|cell| {
                    let cell = cell.split_once('>').map_or("", |(_, rest)| rest);
                    text(cell)
                })
                .collect()
        })
        .collect();
    Some(rows)
}

/// Rows as CSV (RFC 4180, the `csv` crate's quoting).
pub fn csv(rows: &[Vec<String>]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(row)?;
    }
    let bytes = writer.into_inner().map_err(|error| error.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<h2>Endpoints <code>x</code></h2><p>note</p><table><thead><tr><th data-sort="">Endpoint</th><th class="num">Value</th></tr></thead><tbody><tr><td><a href="/e?x=1&amp;y=2">GET /a</a></td><td class="num" data-v="1137.4">$1,137</td></tr><tr><td>say "hi" &lt;b&gt;</td><td class="num">–</td></tr></tbody></table><h3>Endpoints x</h3><table><tr><td>1</td></tr></table>"#;

    #[test]
    fn tables_get_ids_from_their_headings_and_rows_as_printed() {
        assert_eq!(ids(PAGE), ["endpoints-x", "endpoints-x-2"]);
        let rows = rows(PAGE, "endpoints-x").expect("table");
        assert_eq!(
            rows,
            vec![
                vec!["Endpoint".to_owned(), "Value".to_owned()],
                vec!["GET /a".to_owned(), "$1,137".to_owned()],
                vec![r#"say "hi" <b>"#.to_owned(), "–".to_owned()],
            ]
        );
        assert_eq!(
            csv(&rows).expect("csv"),
            "Endpoint,Value\nGET /a,\"$1,137\"\n\"say \"\"hi\"\" <b>\",–\n"
        );
        assert!(super::rows(PAGE, "nope").is_none());
        let annotated = annotate(PAGE, "/p/s/health?since=7d&");
        assert!(annotated.contains(r#"<table id="table-endpoints-x">"#));
        assert!(
            annotated
                .contains(r#"href="/p/s/health?since=7d&amp;format=csv&amp;table=endpoints-x-2""#)
        );
        assert_eq!(ids(&annotated), ids(PAGE), "annotating keeps the ids");
    }
}
