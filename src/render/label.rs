//! Label text: escaping for XML and HTML, width estimates, wrapping.

/// The height of one line of label text.
pub(super) const LINE: f64 = 16.0;
/// The widest a label line may be before it wraps.
const WRAP: f64 = 250.0;

/// How a line of text is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Title,
    Name,
    Detail,
    Note,
    Legend,
}

impl Style {
    pub(super) fn size(self) -> f64 {
        match self {
            Self::Title => 16.0,
            Self::Name => 13.0,
            Self::Detail | Self::Legend => 11.5,
            Self::Note => 12.0,
        }
    }

    pub(super) fn bold(self) -> bool {
        matches!(self, Self::Title | Self::Name | Self::Note)
    }
}

/// Text safe in XML (and HTML) content and attribute values: markup characters as entities,
/// characters XML 1.0 does not allow as a space, newlines kept as character references so an
/// attribute keeps them.
pub(super) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            '\u{FFFE}' | '\u{FFFF}' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An estimate of a character's advance, in ems, erring wide.
fn char_em(c: char) -> f64 {
    match c {
        ' ' | 'i' | 'j' | 'l' | '!' | '|' | '.' | ',' | ':' | ';' | '\'' | 'I' => 0.32,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.4,
        'm' | 'w' => 0.92,
        'M' | 'W' | '@' => 1.0,
        c if c.is_ascii_uppercase() => 0.74,
        c if c.is_ascii_alphanumeric() => 0.6,
        c if c.is_ascii() => 0.62,
        // CJK, Hangul, full-width forms and emoji take a full em or more.
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{1F000}'..='\u{1FAFF}'
        | '\u{20000}'..='\u{3FFFD}' => 1.15,
        _ => 0.7,
    }
}

fn scale(style: Style) -> f64 {
    style.size() * if style.bold() { 1.08 } else { 1.0 }
}

pub(super) fn width(text: &str, style: Style) -> f64 {
    text.chars().map(char_em).sum::<f64>() * scale(style)
}

/// Splits text into lines no wider than `max`: at newlines, then between words, and inside a
/// word too long for a line. Trailing empty lines are dropped.
pub(super) fn wrap(text: &str, style: Style, max: f64) -> Vec<String> {
    let mut lines = Vec::new();
    let space = char_em(' ') * scale(style);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    for paragraph in text.split('\n') {
        let (mut line, mut line_w) = (String::new(), 0.0);
        for word in paragraph.split(' ') {
            let word_w = width(word, style);
            if !line.is_empty() {
                if line_w + space + word_w <= max {
                    line.push(' ');
                    line.push_str(word);
                    line_w += space + word_w;
                    continue;
                }
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
            }
            if word_w <= max {
                line.push_str(word);
                line_w = word_w;
                continue;
            }
            for c in word.chars() {
                let w = char_em(c) * scale(style);
                if line_w + w > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_w = 0.0;
                }
                line.push(c);
                line_w += w;
            }
        }
        lines.push(line);
    }
    while lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Text on one line no wider than `max`: newlines as spaces, and cut short with `…` when it
/// is too wide.
pub(super) fn fit(text: &str, style: Style, max: f64) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if width(&one_line, style) <= max {
        return one_line;
    }
    let budget = max - char_em('…') * scale(style);
    let (mut out, mut used) = (String::new(), 0.0);
    for c in one_line.chars() {
        let w = char_em(c) * scale(style);
        if used + w > budget {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// A node's text, wrapped, with the style of each line.
pub(super) fn label(lines: &[String], note: Option<&str>) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let style = if i == 0 { Style::Name } else { Style::Detail };
        out.extend(wrap(line, style, WRAP).into_iter().map(|l| (l, style)));
    }
    if let Some(note) = note {
        out.extend(
            wrap(note, Style::Note, WRAP)
                .into_iter()
                .map(|l| (l, Style::Note)),
        );
    }
    out
}

pub(super) fn text_size(lines: &[(String, Style)]) -> (f64, f64) {
    let w = lines.iter().map(|(l, s)| width(l, *s)).fold(0.0, f64::max);
    (w, lines.len() as f64 * LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(
            xml("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(xml("a\nb\tc\u{1}d\u{FFFF}"), "a&#10;b c d ");
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_character() {
        let text = "Policy based fulfillment determination with a name that goes on and on \
                    Supercalifragilisticexpialidociousandthensomemorecharacters\r\nnext";
        let lines = wrap(text, Style::Detail, 120.0);
        assert!(lines.len() > 3, "{lines:?}");
        for line in &lines {
            assert!(width(line, Style::Detail) <= 120.0, "{line:?}");
        }
        let joined: String = lines.concat();
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined.replace(' ', ""), squeezed);
        assert_eq!(wrap("name\r", Style::Name, 100.0), ["name"]);
        assert_eq!(wrap("", Style::Name, 100.0), [""]);
    }

    #[test]
    fn a_long_word_wraps_in_linear_time() {
        let word = "x".repeat(200_000);
        let lines = wrap(&word, Style::Name, 250.0);
        assert_eq!(lines.concat(), word);
        assert!(lines.iter().all(|l| width(l, Style::Name) <= 250.0));
    }

    #[test]
    fn a_long_branch_label_is_cut_short() {
        assert_eq!(fit("Seattle\nstore", Style::Detail, 200.0), "Seattle store");
        let long = "A branch name far too long to stand over one narrow column of the drawing";
        let cut = fit(long, Style::Detail, 120.0);
        assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
        assert!(width(&cut, Style::Detail) <= 120.0);
    }

    #[test]
    fn wide_characters_are_estimated_wide() {
        assert!(width("漢字漢字", Style::Detail) > width("abcd", Style::Detail) * 1.5);
    }
}
