//! The city as a command center writes it: serde input types with string ids.
//!
//! Nothing here is checked beyond its JSON shape (unknown fields are refused, so a typo
//! in a field name is an error, not a silently ignored line). [`City::new`](crate::City::new)
//! turns a [`CityConfig`] into the runtime [`City`](crate::City), reporting every problem
//! at once.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// The default limit on organs per street office (机构限额), which a district may lower.
pub const DEFAULT_MAX_ORGANS: u32 = 12;

/// A whole city: its units, organs, departments, catalogue, duty lists, service points and
/// workers. Grid cells are not listed here: they come with the [`Grid`](crate::Grid) and
/// name their community through [`Cell::community`](crate::Cell::community).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityConfig {
    /// The city (市) itself.
    pub city: UnitConfig,
    /// The most organs a street office may have, unless its district sets a lower limit.
    #[serde(default = "default_max_organs")]
    pub max_organs: u32,
    /// Districts (区市).
    pub districts: Vec<DistrictConfig>,
    /// Street and town offices (镇街), with their organs.
    pub streets: Vec<StreetConfig>,
    /// Communities and villages (村居).
    pub communities: Vec<CommunityConfig>,
    /// District departments (区市部门).
    #[serde(default)]
    pub departments: Vec<DepartmentConfig>,
    /// Agencies sent down by vertical departments (派驻机构).
    #[serde(default)]
    pub agencies: Vec<AgencyConfig>,
    /// The roles a worker can have and a category can need (at most [`MAX_ROLES`](crate::city::MAX_ROLES)).
    pub roles: Vec<RoleConfig>,
    /// Service items that service points offer (办事事项).
    #[serde(default)]
    pub service_items: Vec<ServiceItemConfig>,
    /// The event catalogue.
    pub categories: Vec<CategoryConfig>,
    /// Duty lists (职责清单) per level, with per-unit overrides.
    pub duty_lists: DutyListsConfig,
    /// Service points (便民服务点).
    #[serde(default)]
    pub service_points: Vec<ServicePointConfig>,
    /// Everyone enrolled in the grid.
    #[serde(default)]
    pub workers: Vec<WorkerConfig>,
}

fn default_max_organs() -> u32 {
    DEFAULT_MAX_ORGANS
}

impl CityConfig {
    /// Reads a city from JSON.
    ///
    /// # Errors
    /// [`ConfigError::Json`] if the text is not JSON or does not have the shape of a
    /// [`CityConfig`] (an unknown field, a missing one, a wrong type), with line and column.
    pub fn from_json(text: &str) -> Result<CityConfig, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Json {
            message: e.to_string(),
        })
    }

    /// Reads a city config from TOML (the same fields as the JSON form).
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for text that is not TOML or not a city config.
    pub fn from_toml(text: &str) -> Result<CityConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml {
            message: e.to_string(),
        })
    }

    /// The city as TOML that [`CityConfig::from_toml`] reads back.
    ///
    /// # Errors
    /// [`ConfigError::TomlOutput`] if the writer refuses a value.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::TomlOutput {
            message: e.to_string(),
        })
    }

    /// The city as pretty-printed JSON that [`CityConfig::from_json`] reads back.
    pub fn to_json(&self) -> String {
        // A config holds only strings, numbers, vectors and plain structs: it always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// An id and a name: the city itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A district (区市).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// A limit on organs per street office lower than the city's (e.g. 10 or 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_organs: Option<u32>,
}

/// A street or town office (镇街) with its organs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreetConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Id of its district.
    pub district: String,
    /// Its internal organs and public institutions; the four mandatory organs must be here.
    pub organs: Vec<OrganConfig>,
}

/// One organ of a street office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganConfig {
    /// Unique id (across the whole city).
    pub id: String,
    /// Display name, e.g. 综合行政执法办公室.
    pub name: String,
    /// Internal organ (内设机构) or public institution (事业单位).
    pub kind: OrganKind,
    /// Which of the four mandatory organs this is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<MandatoryOrgan>,
    /// The platform it serves, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Ids of the district departments it answers to (one organ to several departments).
    #[serde(default)]
    pub departments: Vec<String>,
}

/// Whether an organ is an internal organ or a public institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganKind {
    /// 内设机构.
    Internal,
    /// 事业单位 (public institution).
    Institution,
}

/// The four platforms (四大平台) of every street office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// 党建 (party building).
    PartyBuilding,
    /// 便民服务 (public service).
    PublicService,
    /// 综合治理 (comprehensive governance).
    Governance,
    /// 综合执法 (comprehensive law enforcement).
    LawEnforcement,
}

impl Platform {
    /// All four, in a fixed order (the index of each is [`Platform::index`]).
    pub const ALL: [Platform; 4] = [
        Platform::PartyBuilding,
        Platform::PublicService,
        Platform::Governance,
        Platform::LawEnforcement,
    ];

    /// Position in [`Platform::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The mandatory organ that owns this platform in every street office.
    pub fn owner(self) -> MandatoryOrgan {
        match self {
            Platform::PartyBuilding => MandatoryOrgan::PartyBuildingOffice,
            Platform::PublicService => MandatoryOrgan::PublicServiceCenter,
            Platform::Governance => MandatoryOrgan::GovernanceCenter,
            Platform::LawEnforcement => MandatoryOrgan::LawEnforcementOffice,
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Platform::PartyBuilding => "党建",
            Platform::PublicService => "便民服务",
            Platform::Governance => "综合治理",
            Platform::LawEnforcement => "综合执法",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Platform::PartyBuilding => "party building",
            Platform::PublicService => "public service",
            Platform::Governance => "comprehensive governance",
            Platform::LawEnforcement => "comprehensive law enforcement",
        })
    }
}

/// The four organs every street office must have (必设机构).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MandatoryOrgan {
    /// 党建工作办公室.
    PartyBuildingOffice,
    /// 综合行政执法办公室.
    LawEnforcementOffice,
    /// 便民服务中心.
    PublicServiceCenter,
    /// 综合治理中心.
    GovernanceCenter,
}

impl MandatoryOrgan {
    /// All four.
    pub const ALL: [MandatoryOrgan; 4] = [
        MandatoryOrgan::PartyBuildingOffice,
        MandatoryOrgan::LawEnforcementOffice,
        MandatoryOrgan::PublicServiceCenter,
        MandatoryOrgan::GovernanceCenter,
    ];

    /// The platform this organ owns.
    pub fn platform(self) -> Platform {
        match self {
            MandatoryOrgan::PartyBuildingOffice => Platform::PartyBuilding,
            MandatoryOrgan::LawEnforcementOffice => Platform::LawEnforcement,
            MandatoryOrgan::PublicServiceCenter => Platform::PublicService,
            MandatoryOrgan::GovernanceCenter => Platform::Governance,
        }
    }

    /// Its usual Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            MandatoryOrgan::PartyBuildingOffice => "党建工作办公室",
            MandatoryOrgan::LawEnforcementOffice => "综合行政执法办公室",
            MandatoryOrgan::PublicServiceCenter => "便民服务中心",
            MandatoryOrgan::GovernanceCenter => "综合治理中心",
        }
    }
}

impl std::fmt::Display for MandatoryOrgan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// A community or village (村居).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityConfig {
    /// Unique id; grid cells name their community by this id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Id of its street office.
    pub street: String,
    /// A village (村) rather than an urban community (社区).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub village: bool,
}

/// A district department (区市部门).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// Unique id.
    pub id: String,
    /// Display name, e.g. 市南区城市管理局.
    pub name: String,
    /// Id of its district.
    pub district: String,
    /// Id of the department it reports to (a brigade to its bureau), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_to: Option<String>,
}

/// An agency sent down by a vertical department (派驻机构), e.g. a police station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyConfig {
    /// Unique id.
    pub id: String,
    /// Display name, e.g. 八大关派出所.
    pub name: String,
    /// Id of the department that sends it.
    pub department: String,
    /// Id of the street office that manages it (dual management, the street office first).
    pub street: String,
    /// The platform it works in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A role (综治, 司法, 公安, 城管 ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Unique id, e.g. `public_order`.
    pub id: String,
    /// Display name, e.g. 综治.
    pub name: String,
}

/// A service item (办事事项) offered at service points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceItemConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// An event category of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryConfig {
    /// Unique code, e.g. `CG-01`.
    pub code: String,
    /// Display name, e.g. 暴露垃圾.
    pub name: String,
    /// The platform it belongs to.
    pub platform: Platform,
    /// Ids of the roles that can handle it (any one of them suffices).
    pub roles: Vec<String>,
    /// Deadlines by priority.
    pub deadlines: Vec<DeadlineConfig>,
    /// The lowest level the duty may be given to; it is never pushed below.
    pub level: DutyLevel,
    /// Ids of the district departments that own it (at most one per district); a case no
    /// unit on its chain may hold is referred to the one of its district.
    #[serde(default)]
    pub departments: Vec<String>,
    /// The service item it asks for, for a service request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_item: Option<String>,
}

/// A deadline for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineConfig {
    /// The priority.
    pub priority: Priority,
    /// Hours from registration to resolution (fractions allowed).
    pub hours: f64,
}

/// How urgent a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// 特急.
    Urgent,
    /// 紧急.
    High,
    /// 一般.
    Normal,
    /// 不急.
    Low,
}

impl Priority {
    /// All priorities, most urgent first (the index of each is [`Priority::index`]).
    pub const ALL: [Priority; 4] = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// Position in [`Priority::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The levels a duty can sit at, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyLevel {
    /// A grid worker handles it in the cell (the community holds the duty).
    Grid,
    /// The community or village (村居).
    Community,
    /// The street office's organ for the category's platform.
    Street,
    /// The district department that owns the category.
    District,
}

impl std::fmt::Display for DutyLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DutyLevel::Grid => "grid",
            DutyLevel::Community => "community",
            DutyLevel::Street => "street office",
            DutyLevel::District => "district department",
        })
    }
}

/// Duty lists (职责清单): which categories each level may be given, with per-unit
/// overrides. Districts' departments hold what they own and need no list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyListsConfig {
    /// Category codes every community and village holds (unless overridden).
    #[serde(default)]
    pub community: Vec<String>,
    /// Category codes every street office holds (unless overridden).
    #[serde(default)]
    pub street: Vec<String>,
    /// Per-unit changes to the level's list.
    #[serde(default)]
    pub overrides: Vec<DutyOverrideConfig>,
}

/// A change to one unit's duty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyOverrideConfig {
    /// Id of a street office or community.
    pub unit: String,
    /// Category codes added to its list (never below a category's level).
    #[serde(default)]
    pub add: Vec<String>,
    /// Category codes taken off its list.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A service point (便民服务点).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePointConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Id of the street office or community that runs it.
    pub unit: String,
    /// Where it is, `[lon, lat]` (inside the grid).
    pub position: [f64; 2],
    /// Ids of the service items it offers.
    pub items: Vec<String>,
}

/// Someone enrolled in the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Unique id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What kind of worker.
    pub kind: WorkerKind,
    /// The unit they belong to (属地): the id of a community (grid workers and everyone
    /// else enrolled in its grid), of a street-office organ (its own staff, e.g. the
    /// law-enforcement office's officers) or of an agency the street office manages
    /// (派驻机构, e.g. the police station). Work reaches them only through that unit.
    pub unit: String,
    /// Ids of their roles.
    pub roles: Vec<String>,
    /// Names of their home cells (grid cell ids): cells of their community, or of their
    /// organ's or agency's street office.
    pub cells: Vec<String>,
    /// How many cases they can hold at once.
    pub capacity: u32,
    /// Last known position `[lon, lat]`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 2]>,
}

/// The kinds of people enrolled in the grid (一员多能).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// 专职网格员.
    FullTimeGridWorker,
    /// 兼职网格员.
    PartTimeGridWorker,
    /// 管区主任.
    AreaDirector,
    /// 包村干部.
    VillageLiaisonCadre,
    /// 党员.
    PartyMember,
    /// 社区民警.
    CommunityPolice,
    /// 村居两委成员.
    CommitteeMember,
    /// 志愿者.
    Volunteer,
    /// 居民代表.
    ResidentRepresentative,
    /// 机关工作人员: staff of a street-office organ.
    OrganStaff,
    /// 执法队员: a law-enforcement officer of the street office or of a squad it manages.
    LawEnforcementOfficer,
    /// 派驻机构人员: staff of an agency sent down and managed by the street office (the
    /// police station's officers, the justice office's staff ...).
    AgencyStaff,
}

impl WorkerKind {
    /// All kinds.
    pub const ALL: [WorkerKind; 12] = [
        WorkerKind::FullTimeGridWorker,
        WorkerKind::PartTimeGridWorker,
        WorkerKind::AreaDirector,
        WorkerKind::VillageLiaisonCadre,
        WorkerKind::PartyMember,
        WorkerKind::CommunityPolice,
        WorkerKind::CommitteeMember,
        WorkerKind::Volunteer,
        WorkerKind::ResidentRepresentative,
        WorkerKind::OrganStaff,
        WorkerKind::LawEnforcementOfficer,
        WorkerKind::AgencyStaff,
    ];

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            WorkerKind::FullTimeGridWorker => "专职网格员",
            WorkerKind::PartTimeGridWorker => "兼职网格员",
            WorkerKind::AreaDirector => "管区主任",
            WorkerKind::VillageLiaisonCadre => "包村干部",
            WorkerKind::PartyMember => "党员",
            WorkerKind::CommunityPolice => "社区民警",
            WorkerKind::CommitteeMember => "村居两委成员",
            WorkerKind::Volunteer => "志愿者",
            WorkerKind::ResidentRepresentative => "居民代表",
            WorkerKind::OrganStaff => "机关工作人员",
            WorkerKind::LawEnforcementOfficer => "执法队员",
            WorkerKind::AgencyStaff => "派驻机构人员",
        }
    }
}
