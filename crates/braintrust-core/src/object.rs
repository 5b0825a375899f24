//! The objects rows belong to: project logs, experiments, datasets and playground logs.

use serde_json::{Map, Value};

/// The kind of object a row is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// An experiment (`experiment_id`).
    Experiment,
    /// A project's logs (`project_id` + `log_id: "g"`).
    ProjectLogs,
    /// A playground's logs (`prompt_session_id` + `log_id: "x"`).
    PlaygroundLogs,
    /// A dataset (`dataset_id`).
    Dataset,
}

impl ObjectType {
    /// The name used by the API (`experiment`, `project_logs`, `playground_logs`, `dataset`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Experiment => "experiment",
            ObjectType::ProjectLogs => "project_logs",
            ObjectType::PlaygroundLogs => "playground_logs",
            ObjectType::Dataset => "dataset",
        }
    }

    /// Parses [`ObjectType::as_str`] names.
    pub fn from_name(name: &str) -> Option<ObjectType> {
        Some(match name {
            "experiment" => ObjectType::Experiment,
            "project_logs" => ObjectType::ProjectLogs,
            "playground_logs" => ObjectType::PlaygroundLogs,
            "dataset" => ObjectType::Dataset,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id fields that place a row in its object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectIds {
    object_type: ObjectType,
    id: String,
}

impl ObjectIds {
    /// Ids of a project's logs.
    pub fn project_logs(project_id: impl Into<String>) -> ObjectIds {
        ObjectIds::new(ObjectType::ProjectLogs, project_id)
    }

    /// Ids of an experiment.
    pub fn experiment(experiment_id: impl Into<String>) -> ObjectIds {
        ObjectIds::new(ObjectType::Experiment, experiment_id)
    }

    /// Ids of a dataset.
    pub fn dataset(dataset_id: impl Into<String>) -> ObjectIds {
        ObjectIds::new(ObjectType::Dataset, dataset_id)
    }

    /// Ids of a playground session's logs.
    pub fn playground_logs(prompt_session_id: impl Into<String>) -> ObjectIds {
        ObjectIds::new(ObjectType::PlaygroundLogs, prompt_session_id)
    }

    /// Ids of the given kind of object.
    pub fn new(object_type: ObjectType, id: impl Into<String>) -> ObjectIds {
        ObjectIds {
            object_type,
            id: id.into(),
        }
    }

    /// The kind of object.
    pub fn object_type(&self) -> ObjectType {
        self.object_type
    }

    /// The object's id (project, experiment, dataset or prompt session id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes the id fields into a row (`project_id` + `log_id`, `experiment_id`, …).
    pub fn write_to(&self, row: &mut Map<String, Value>) {
        for (key, value) in self.fields() {
            row.insert(key.into(), Value::String(value.to_owned()));
        }
    }

    /// The id fields of a row of this object, in the order rows carry them.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let (key, log_id) = match self.object_type {
            ObjectType::Experiment => ("experiment_id", None),
            ObjectType::Dataset => ("dataset_id", None),
            ObjectType::ProjectLogs => ("project_id", Some("g")),
            ObjectType::PlaygroundLogs => ("prompt_session_id", Some("x")),
        };
        std::iter::once((key, self.id.as_str())).chain(log_id.map(|tag| ("log_id", tag)))
    }

    /// Reads the object a row belongs to. Experiment and dataset ids win over project ids
    /// (an experiment row may also carry its `project_id`).
    pub fn from_row(row: &Map<String, Value>) -> Option<ObjectIds> {
        ObjectIds::from_fields(|key| row.get(key).and_then(Value::as_str))
    }

    /// Reads the object a row belongs to from its string fields, as [`ObjectIds::from_row`]
    /// does: `text(key)` gives a field's value when it is a string.
    pub fn from_fields<'a>(text: impl Fn(&str) -> Option<&'a str>) -> Option<ObjectIds> {
        let text = |key: &str| text(key).filter(|s| !s.is_empty());
        if let Some(id) = text("experiment_id") {
            return Some(ObjectIds::experiment(id));
        }
        if let Some(id) = text("dataset_id") {
            return Some(ObjectIds::dataset(id));
        }
        match (
            text("project_id"),
            text("prompt_session_id"),
            text("log_id"),
        ) {
            (Some(id), _, Some("g")) => Some(ObjectIds::project_logs(id)),
            (_, Some(id), Some("x")) => Some(ObjectIds::playground_logs(id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_round_trip_through_rows() {
        for ids in [
            ObjectIds::project_logs("p"),
            ObjectIds::experiment("e"),
            ObjectIds::dataset("d"),
            ObjectIds::playground_logs("s"),
        ] {
            let mut row = Map::new();
            ids.write_to(&mut row);
            assert_eq!(ObjectIds::from_row(&row), Some(ids.clone()));
            assert_eq!(
                ObjectType::from_name(ids.object_type().as_str()),
                Some(ids.object_type())
            );
        }
    }

    #[test]
    fn project_id_without_log_id_is_not_an_object() {
        let row = json!({"project_id": "p"});
        assert_eq!(ObjectIds::from_row(row.as_object().unwrap()), None);
        let row = json!({"project_id": "p", "log_id": "g", "experiment_id": "e"});
        assert_eq!(
            ObjectIds::from_row(row.as_object().unwrap()),
            Some(ObjectIds::experiment("e"))
        );
    }
}
