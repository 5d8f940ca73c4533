//! Deterministic seed data: realistic names, departments, some disabled accounts, groups.
//! The same seed always gives the same tenant (ids included), so tests and benchmarks can rely on it.

use uuid::Uuid;

use crate::config::{ADMIN_UPN, SandboxConfig};
use crate::state::{Directory, Group, Life, User};

const FIRST: &[&str] = &[
    "Ada", "Alan", "Alice", "Amara", "Anna", "Arjun", "Beatriz", "Ben", "Carlos", "Chen", "Chloe",
    "Daniel", "Diego", "Elena", "Emil", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines",
    "Ivan", "Jack", "Jana", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas",
    "Maya", "Mei", "Mia", "Nadia", "Noah", "Nora", "Olga", "Omar", "Paula", "Priya", "Rafael",
    "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Wei", "Yara", "Yusuf",
    "Zoe", "Marta", "Pedro", "Ingrid", "Kofi", "Laila", "Mateo", "Nia", "Oscar", "Pia", "Quinn",
    "Ravi", "Selma", "Tomas", "Ulla", "Vera", "Will", "Xenia", "Yoshi", "Zane",
];
const LAST: &[&str] = &[
    "Adams",
    "Alvarez",
    "Andersen",
    "Baker",
    "Bauer",
    "Becker",
    "Brown",
    "Castro",
    "Chen",
    "Clark",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Gomez",
    "Gupta",
    "Hansen",
    "Hoffmann",
    "Ivanova",
    "Jensen",
    "Johnson",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Miller",
    "Moreau",
    "Muller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Petrov",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Thomas",
    "Wagner",
    "Walker",
    "Wang",
    "Weber",
    "Wilson",
    "Wong",
    "Yamamoto",
    "Young",
    "Zhang",
    "Ziegler",
    "Haddad",
    "Mensah",
    "Kaur",
    "Rahman",
    "Costa",
    "Lindqvist",
    "Moretti",
    "Kovacs",
    "Horvat",
    "Dimitrov",
    "Sato",
    "Ito",
    "Reyes",
    "Cruz",
    "Flores",
    "Ramos",
    "Murphy",
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Human Resources",
    "Legal",
    "Operations",
    "Support",
    "Research",
    "IT",
];
const TITLES: &[&str] = &[
    "Associate",
    "Specialist",
    "Analyst",
    "Manager",
    "Senior Engineer",
    "Engineer",
    "Director",
    "Coordinator",
    "Consultant",
    "Lead",
];
const OFFICES: &[&str] = &[
    "Amsterdam",
    "Berlin",
    "Lisbon",
    "London",
    "Madrid",
    "Paris",
    "Seattle",
    "Singapore",
    "Tokyo",
    "Toronto",
];
const PROJECTS: &[&str] = &[
    "Atlas",
    "Borealis",
    "Cobalt",
    "Delta Wing",
    "Ember",
    "Fjord",
    "Granite",
    "Helios",
    "Indigo",
    "Juniper",
];

/// SplitMix64: tiny, deterministic, good enough for names.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next()) << 64) | u128::from(self.next());
        uuid::Builder::from_random_bytes(bytes.to_be_bytes()).into_uuid()
    }
}

fn nick(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

pub(crate) fn seed(cfg: &SandboxConfig, now_ms: i64) -> Directory {
    let mut rng = Rng(cfg.seed ^ 0x5EED_0000_0000_0004);
    let mut dir = Directory {
        policy: cfg.policy.clone(),
        ..Directory::default()
    };
    dir.token_key = (0..4).flat_map(|_| rng.next().to_le_bytes()).collect();
    // The key must not be predictable from the public seed: mix in fresh randomness.
    {
        use rand::Rng as _;
        let mut extra = [0u8; 32];
        rand::rng().fill_bytes(&mut extra);
        for (k, e) in dir.token_key.iter_mut().zip(extra) {
            *k ^= e;
        }
    }
    dir.users.reserve(cfg.users);
    let admin = User {
        id: rng.uuid(),
        upn: ADMIN_UPN.replace("contoso.example", &cfg.domain),
        display_name: "Sandbox Admin".into(),
        given_name: Some("Sandbox".into()),
        surname: Some("Admin".into()),
        mail: Some(ADMIN_UPN.replace("contoso.example", &cfg.domain)),
        mail_nickname: "admin".into(),
        department: Some("IT".into()),
        job_title: Some("Global Administrator".into()),
        office_location: Some("Seattle".into()),
        account_enabled: true,
        created: now_ms - 400 * 86_400_000,
        life: Life::Active,
    };
    dir.push_user(admin);
    let mut dept_members: Vec<Vec<u32>> = vec![Vec::new(); DEPARTMENTS.len()];
    dept_members[DEPARTMENTS.len() - 1].push(0);
    for i in 1..cfg.users {
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let base = format!("{}.{}", nick(first), nick(last));
        let mut local = base.clone();
        let mut n = 1;
        while dir
            .user_by_upn
            .contains_key(&format!("{local}@{}", cfg.domain))
        {
            n += 1;
            local = format!("{base}{n}");
        }
        let upn = format!("{local}@{}", cfg.domain);
        let d = (rng.next() % DEPARTMENTS.len() as u64) as usize;
        let user = User {
            id: rng.uuid(),
            upn: upn.clone(),
            display_name: format!("{first} {last}"),
            given_name: Some(first.into()),
            surname: Some(last.into()),
            mail: Some(upn),
            mail_nickname: local,
            department: Some(DEPARTMENTS[d].into()),
            job_title: Some(rng.pick(TITLES).into()),
            office_location: Some(rng.pick(OFFICES).into()),
            // About one account in fifteen is disabled, as in a real directory with leavers.
            account_enabled: !rng.next().is_multiple_of(15),
            created: now_ms - (rng.next() % (1000 * 86_400_000)) as i64 - i as i64,
            life: Life::Active,
        };
        let pos = dir.push_user(user);
        dept_members[d].push(pos);
    }
    let wanted = cfg.groups.unwrap_or(DEPARTMENTS.len() + 3);
    for g in 0..wanted {
        let (name, description, members) = if g < DEPARTMENTS.len() {
            (
                DEPARTMENTS[g].to_string(),
                format!("Everyone in {}", DEPARTMENTS[g]),
                std::mem::take(&mut dept_members[g]),
            )
        } else {
            let p = g - DEPARTMENTS.len();
            let name = if p < PROJECTS.len() {
                format!("Project {}", PROJECTS[p])
            } else {
                format!(
                    "Project {} {}",
                    PROJECTS[p % PROJECTS.len()],
                    p / PROJECTS.len() + 1
                )
            };
            let size = (cfg.users / 20).clamp(1, 50);
            let mut m: Vec<u32> = (0..size)
                .map(|_| (rng.next() % cfg.users as u64) as u32)
                .collect();
            m.sort_unstable();
            m.dedup();
            (name, "Project team".to_string(), m)
        };
        let group = Group {
            id: rng.uuid(),
            mail_nickname: nick(&name),
            display_name: name,
            description: Some(description),
            mail_enabled: false,
            security_enabled: true,
            created: now_ms - 300 * 86_400_000,
            members,
            life: Life::Active,
        };
        dir.push_group(group);
    }
    dir
}
