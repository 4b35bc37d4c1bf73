//! Named calendars: the built-in defaults plus files loaded at runtime.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Calendar, CalendarError};

/// The calendar files shipped with the crate, compiled in so that the
/// defaults work without any files on disk.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "cn-mainland.toml",
        include_str!("../calendars/cn-mainland.toml"),
    ),
    ("mon-fri.toml", include_str!("../calendars/mon-fri.toml")),
];

/// A set of calendars by name.
#[derive(Clone, Debug, Default)]
pub struct CalendarSet {
    calendars: BTreeMap<String, Calendar>,
}

impl CalendarSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in calendars (`cn-mainland`, `mon-fri`).
    pub fn builtin() -> Result<Self, CalendarError> {
        let mut set = Self::new();
        for (file, text) in BUILTIN_FILES {
            set.insert(
                Calendar::from_toml(text).map_err(|e| CalendarError::CalendarFile {
                    path: (*file).into(),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(set)
    }

    /// The built-in calendars, overridden or extended by every `*.toml` file
    /// in `dir`.
    pub fn builtin_with_dir(dir: Option<&Path>) -> Result<Self, CalendarError> {
        let mut set = Self::builtin()?;
        if let Some(dir) = dir {
            set.load_dir(dir)?;
        }
        Ok(set)
    }

    /// Adds a calendar, replacing any calendar of the same name.
    pub fn insert(&mut self, cal: Calendar) {
        self.calendars.insert(cal.name().to_string(), cal);
    }

    /// Loads every `*.toml` file in `dir` (in file-name order), each
    /// replacing a calendar of the same name. This lets an operator publish
    /// next year's holidays without a rebuild.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), CalendarError> {
        let io = |source| CalendarError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| CalendarError::Io {
                path: path.clone(),
                source,
            })?;
            let cal = Calendar::from_toml(&text).map_err(|e| CalendarError::CalendarFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            self.insert(cal);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Calendar, CalendarError> {
        self.calendars
            .get(name)
            .ok_or_else(|| CalendarError::UnknownCalendar {
                name: name.to_string(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.calendars.keys().map(String::as_str)
    }

    /// Builds every calendar's lookup tables now.
    pub fn prepare(&self) {
        self.calendars.values().for_each(Calendar::prepare);
    }

    /// Approximate heap memory held by the set, including lookup tables that
    /// have been built (see [`CalendarSet::prepare`]).
    pub fn approx_heap_bytes(&self) -> usize {
        self.calendars
            .iter()
            .map(|(k, v)| k.capacity() + size_of::<Calendar>() + v.approx_heap_bytes())
            .sum()
    }
}
