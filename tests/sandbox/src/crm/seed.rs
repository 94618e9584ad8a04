//! The customers every fresh CRM starts with, the same on every start so tests and people
//! can rely on them:
//!
//! | id | name | phone | tier | orders | tickets |
//! | --- | --- | --- | --- | --- | --- |
//! | `cus_1001` | 王芳 (Wang Fang) | +8613800138000 | vip | ORD-1003, ORD-1002, ORD-1001 | TCK-5001 open, TCK-4990 closed |
//! | `cus_1002` | 李雷 (Li Lei) | +8613912345678 | regular | none | none |
//! | `cus_1003` | Ivan Petrov | +79161234567 | regular | ORD-1004 | TCK-4800 closed |
//! | `cus_1004` | John Smith | +14155550123 | vip | ORD-1006, ORD-1005 | TCK-5002 open |
//! | `cus_1005` | 北京茶叶店 (Beijing Tea Shop) | +861012345678, no e-mail | regular | none | none |

use super::records::{Customer, Item, Order, OrderStatus, Record, Ticket, TicketStatus, Tier};

/// The seeded customers, oldest first.
pub(crate) fn customers() -> Vec<Record> {
    vec![
        wang_fang(),
        li_lei(),
        ivan_petrov(),
        john_smith(),
        tea_shop(),
    ]
}

fn wang_fang() -> Record {
    Record {
        customer: customer(
            "cus_1001",
            "王芳 (Wang Fang)",
            "+8613800138000",
            Some("wang.fang@example.cn"),
            Tier::Vip,
            &["vip", "repeat-buyer"],
            1_672_531_200,
        ),
        orders: vec![
            order(
                "ORD-1001",
                OrderStatus::Delivered,
                ("299.00", "CNY"),
                1_717_200_000,
                item("SKU-KETTLE-01", "电热水壶 Electric kettle", 1),
            ),
            order(
                "ORD-1002",
                OrderStatus::Shipped,
                ("158.50", "CNY"),
                1_719_792_000,
                item("SKU-TEA-05", "龙井茶 Longjing tea 250 g", 2),
            ),
            order(
                "ORD-1003",
                OrderStatus::Paid,
                ("1299.00", "CNY"),
                1_722_470_400,
                item("SKU-BLENDER-02", "破壁机 Blender", 1),
            ),
        ],
        tickets: vec![
            ticket(
                "TCK-4990",
                "发票抬头修改 Invoice title change",
                TicketStatus::Closed,
                1_718_000_000,
            ),
            ticket(
                "TCK-5001",
                "快递未送达 Parcel of ORD-1002 not delivered",
                TicketStatus::Open,
                1_720_000_000,
            ),
        ],
    }
}

fn li_lei() -> Record {
    Record {
        customer: customer(
            "cus_1002",
            "李雷 (Li Lei)",
            "+8613912345678",
            Some("li.lei@example.cn"),
            Tier::Regular,
            &["new"],
            1_722_000_000,
        ),
        orders: Vec::new(),
        tickets: Vec::new(),
    }
}

fn ivan_petrov() -> Record {
    Record {
        customer: customer(
            "cus_1003",
            "Ivan Petrov",
            "+79161234567",
            Some("ivan.petrov@example.ru"),
            Tier::Regular,
            &["international"],
            1_704_067_200,
        ),
        orders: vec![order(
            "ORD-1004",
            OrderStatus::Delivered,
            ("4500.00", "RUB"),
            1_715_000_000,
            item("SKU-SAMOVAR-01", "Samovar", 1),
        )],
        tickets: vec![ticket(
            "TCK-4800",
            "Customs declaration",
            TicketStatus::Closed,
            1_715_500_000,
        )],
    }
}

fn john_smith() -> Record {
    Record {
        customer: customer(
            "cus_1004",
            "John Smith",
            "+14155550123",
            Some("john.smith@example.com"),
            Tier::Vip,
            &["vip", "enterprise"],
            1_688_169_600,
        ),
        orders: vec![
            order(
                "ORD-1005",
                OrderStatus::Refunded,
                ("89.99", "USD"),
                1_711_000_000,
                item("SKU-MUG-03", "Porcelain mug", 3),
            ),
            order(
                "ORD-1006",
                OrderStatus::Delivered,
                ("249.00", "USD"),
                1_716_000_000,
                item("SKU-TEASET-01", "Tea set", 1),
            ),
        ],
        tickets: vec![ticket(
            "TCK-5002",
            "Refund of ORD-1005 not received",
            TicketStatus::Open,
            1_721_000_000,
        )],
    }
}

fn tea_shop() -> Record {
    Record {
        customer: customer(
            "cus_1005",
            "北京茶叶店 (Beijing Tea Shop)",
            "+861012345678",
            None,
            Tier::Regular,
            &["b2b"],
            1_725_000_000,
        ),
        orders: Vec::new(),
        tickets: Vec::new(),
    }
}

fn customer(
    id: &str,
    name: &str,
    phone: &str,
    email: Option<&str>,
    tier: Tier,
    tags: &[&str],
    created_at: u64,
) -> Customer {
    Customer {
        id: id.to_owned(),
        name: name.to_owned(),
        phone: phone.to_owned(),
        email: email.map(str::to_owned),
        tier,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        created_at,
    }
}

fn order(
    id: &str,
    status: OrderStatus,
    (total, currency): (&str, &str),
    created_at: u64,
    item: Item,
) -> Order {
    Order {
        id: id.to_owned(),
        status,
        total: total.to_owned(),
        currency: currency.to_owned(),
        created_at,
        items: vec![item],
    }
}

fn item(sku: &str, name: &str, qty: u32) -> Item {
    Item {
        sku: sku.to_owned(),
        name: name.to_owned(),
        qty,
    }
}

fn ticket(id: &str, subject: &str, status: TicketStatus, updated_at: u64) -> Ticket {
    Ticket {
        id: id.to_owned(),
        subject: subject.to_owned(),
        status,
        updated_at,
    }
}
