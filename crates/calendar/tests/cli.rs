mod common;

use std::path::PathBuf;

use redress_calendar::{CalendarCommand, CalendarError};

fn due(
    calendar: &str,
    from: &str,
    add: &str,
    hours: Option<&str>,
    zone: Option<&str>,
) -> Result<String, CalendarError> {
    CalendarCommand::Due {
        calendar: calendar.into(),
        from: from.into(),
        add: add.into(),
        hours: hours.map(Into::into),
        zone: zone.map(Into::into),
        calendar_dir: None,
    }
    .run()
}

fn days(
    calendar: &str,
    from: &str,
    to: &str,
    dir: Option<PathBuf>,
) -> Result<String, CalendarError> {
    CalendarCommand::Days {
        calendar: calendar.into(),
        from: from.into(),
        to: to.into(),
        calendar_dir: dir,
    }
    .run()
}

#[test]
fn days_lists_each_date() {
    let out = days("cn-mainland", "2025-09-27", "2025-10-02", None).unwrap();
    assert_eq!(
        out,
        "2025-09-27 off\n\
         2025-09-28 workday make-up\n\
         2025-09-29 workday\n\
         2025-09-30 workday\n\
         2025-10-01 off National Day & Mid-Autumn Festival (国庆节、中秋节)\n\
         2025-10-02 off National Day & Mid-Autumn Festival (国庆节、中秋节)\n"
    );
    let out = days("mon-fri", "2026-01-01", "2026-01-01", None).unwrap();
    assert_eq!(out, "2026-01-01 workday\n");
}

#[test]
fn due_prints_rfc3339_in_the_calendar_zone() {
    assert_eq!(
        due(
            "cn-mainland",
            "2025-12-31T10:00:00+08:00",
            "2 working days",
            None,
            None
        )
        .unwrap(),
        "2026-01-05T18:00:00+08:00\n"
    );
    // Input in UTC, output in the calendar's zone.
    assert_eq!(
        due(
            "cn-mainland",
            "2025-12-31T02:00:00Z",
            "1 business hour",
            None,
            None
        )
        .unwrap(),
        "2025-12-31T11:00:00+08:00\n"
    );
    assert_eq!(
        due(
            "mon-fri",
            "2026-01-05T17:00:00Z",
            "2 business hours",
            Some("08:00-12:00,13:00-17:00"),
            Some("Europe/Berlin")
        )
        .unwrap(),
        "2026-01-06T10:00:00+01:00\n"
    );
    assert_eq!(
        due("mon-fri", "2026-01-05T17:00:00Z", "1 day", None, None).unwrap(),
        "2026-01-06T17:00:00+00:00\n"
    );
}

#[test]
fn errors_name_the_bad_input() {
    let e = due("nowhere", "2026-01-05T09:00:00Z", "1 hour", None, None).unwrap_err();
    assert!(matches!(e, CalendarError::UnknownCalendar { .. }));
    assert!(e.to_string().contains("nowhere") && e.to_string().contains("cn-mainland"));
    let e = due("mon-fri", "2026-01-05 09:00", "1 hour", None, None).unwrap_err();
    assert!(matches!(e, CalendarError::InvalidTimestamp { .. }), "{e}");
    let e = due("mon-fri", "2026-01-05T09:00:00Z", "1 fortnight", None, None).unwrap_err();
    assert!(matches!(e, CalendarError::InvalidDuration { .. }), "{e}");
    assert!(e.to_string().contains("1 fortnight"));
    let e = due(
        "mon-fri",
        "2026-01-05T09:00:00Z",
        "1 hour",
        Some("9-5"),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, CalendarError::InvalidHours { .. }), "{e}");
    let e = due(
        "mon-fri",
        "2026-01-05T09:00:00Z",
        "1 hour",
        None,
        Some("Nowhere/City"),
    )
    .unwrap_err();
    assert!(matches!(e, CalendarError::UnknownZone { .. }), "{e}");
    let e = days("mon-fri", "2026-13-01", "2026-12-31", None).unwrap_err();
    assert!(matches!(e, CalendarError::InvalidDate { .. }), "{e}");
    let e = days("mon-fri", "2026-02-01", "2026-01-01", None).unwrap_err();
    assert!(matches!(e, CalendarError::ReversedRange { .. }), "{e}");
    let e = days(
        "mon-fri",
        "2026-01-01",
        "2026-01-02",
        Some("/nonexistent-calendar-dir".into()),
    )
    .unwrap_err();
    assert!(matches!(e, CalendarError::Io { .. }), "{e}");
}

#[test]
fn calendar_dir_overrides_and_adds() {
    let dir = std::env::temp_dir().join(format!("redress-calendar-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A new year for cn-mainland published after the build: 2027-01-01 off.
    let builtin = redress_calendar::BUILTIN_FILES
        .iter()
        .find(|(f, _)| *f == "cn-mainland.toml")
        .unwrap()
        .1;
    let updated = format!(
        "{builtin}\n[[year]]\nyear = 2027\nsource = \"test notice\"\nholidays = [{{ name = \"New Year's Day (元旦)\", from = \"2027-01-01\", to = \"2027-01-03\" }}]\n"
    );
    std::fs::write(dir.join("cn-mainland.toml"), updated).unwrap();
    std::fs::write(
        dir.join("sat.toml"),
        "name = \"six-day\"\nzone = \"Asia/Dubai\"\nworkdays = [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\"]\nhours = [\"08:00-16:00\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a calendar").unwrap();

    let before = days("cn-mainland", "2027-01-01", "2027-01-01", None).unwrap();
    assert_eq!(before, "2027-01-01 workday\n");
    let after = days("cn-mainland", "2027-01-01", "2027-01-01", Some(dir.clone())).unwrap();
    assert_eq!(after, "2027-01-01 off New Year's Day (元旦)\n");
    let out = CalendarCommand::Due {
        calendar: "six-day".into(),
        from: "2026-01-09T15:00:00+04:00".into(),
        add: "2 business hours".into(),
        hours: None,
        zone: None,
        calendar_dir: Some(dir.clone()),
    }
    .run()
    .unwrap();
    assert_eq!(out, "2026-01-10T09:00:00+04:00\n");

    // A broken file is reported with its path.
    std::fs::write(dir.join("broken.toml"), "name = ").unwrap();
    let e = days("mon-fri", "2026-01-01", "2026-01-01", Some(dir.clone())).unwrap_err();
    assert!(matches!(e, CalendarError::CalendarFile { .. }), "{e}");
    assert!(e.to_string().contains("broken.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clap_parses_the_subcommands() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: CalendarCommand,
    }
    let cli = Cli::try_parse_from([
        "redress",
        "due",
        "--calendar",
        "cn-mainland",
        "--from",
        "2026-01-05T09:00:00+08:00",
        "--add",
        "3 business hours",
        "--hours",
        "09:00-18:00",
        "--zone",
        "Asia/Shanghai",
    ])
    .unwrap();
    assert_eq!(cli.cmd.run().unwrap(), "2026-01-05T12:00:00+08:00\n");
    let cli = Cli::try_parse_from([
        "redress",
        "days",
        "--calendar",
        "mon-fri",
        "--from",
        "2026-01-03",
        "--to",
        "2026-01-05",
    ])
    .unwrap();
    assert_eq!(
        cli.cmd.run().unwrap(),
        "2026-01-03 off\n2026-01-04 off\n2026-01-05 workday\n"
    );
    assert!(Cli::try_parse_from(["redress", "due", "--calendar", "x"]).is_err());
}
