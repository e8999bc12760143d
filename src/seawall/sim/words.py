"""Word lists the simulator draws names, hash-buster text and forged host names from."""

from __future__ import annotations

FIRST_NAMES = (
    *("James", "Mary", "Robert", "Linda", "Michael", "Susan", "David", "Karen", "Thomas"),
    *("Sarah", "Daniel", "Laura", "Paul", "Emily", "Mark", "Helen", "Steven", "Anna"),
    *("Brian", "Julia", "Kevin", "Grace", "Peter", "Alice", "Frank", "Nancy", "Oliver"),
    *("Jürgen", "Stefan", "Monika", "Sabine", "Klaus", "Ursula", "Andreas", "Petra", "Jörg"),
    *("Katrin", "Matthias", "Birgit", "Tobias", "Sönke", "Heike", "Lukas", "Anke", "Uwe"),
)
LAST_NAMES = (
    *("Smith", "Johnson", "Brown", "Miller", "Wilson", "Moore", "Taylor", "Clark", "Hall"),
    *("Walker", "Young", "King", "Wright", "Green", "Baker", "Adams", "Nelson", "Carter"),
    *("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"),
    *("Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann"),
    *("Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Werner", "Köhler", "Jäger"),
)

# Ordinary dictionary words: hash-busters, page names, forged HELOs and throwaway domains.
WORDS = (
    *("abandon", "absolute", "academy", "account", "acrobat", "adjust", "admiral", "advance"),
    *("aerial", "affair", "agenda", "airport", "alarm", "album", "alcove", "almond", "amber"),
    *("anchor", "angle", "animal", "ankle", "answer", "antique", "anvil", "apple", "april"),
    *("arcade", "arch", "arctic", "arena", "armor", "arrow", "artist", "aspen", "atlas"),
    *("autumn", "avenue", "badge", "bakery", "ballad", "bamboo", "banner", "barley", "barrel"),
    *("basin", "basket", "beacon", "beaver", "bedrock", "beetle", "bellow", "berry", "bishop"),
    *("blanket", "blossom", "border", "bottle", "boulder", "bracket", "breeze", "bridge"),
    *("bronze", "bucket", "buffalo", "bundle", "butter", "cabin", "cactus", "camel", "candle"),
    *("canyon", "carbon", "carpet", "castle", "cedar", "cellar", "chapel", "cherry", "chimney"),
    *("cinder", "circle", "citrus", "clover", "cobalt", "comet", "copper", "coral", "cotton"),
    *("cradle", "crater", "cricket", "crystal", "cupboard", "dagger", "dancer", "delta"),
    *("desert", "dinner", "dolphin", "domain", "donkey", "dragon", "drizzle", "eagle"),
    *("easel", "echo", "eclipse", "elbow", "ember", "engine", "falcon", "feather", "fern"),
    *("fiddle", "fjord", "flannel", "flint", "forest", "fossil", "fountain", "garden"),
    *("garnet", "gazebo", "ginger", "glacier", "goblet", "granite", "gravel", "harbor"),
    *("harvest", "hazel", "helmet", "hermit", "hollow", "honey", "horizon", "island", "ivory"),
    *("jacket", "jasmine", "jigsaw", "journal", "jungle", "kettle", "kingdom", "ladder"),
    *("lagoon", "lantern", "laurel", "lemon", "library", "lilac", "linen", "lobster", "locket"),
    *("magnet", "mango", "maple", "marble", "meadow", "mercury", "meteor", "mirror", "mosaic"),
    *("muffin", "napkin", "nectar", "nickel", "nutmeg", "oasis", "orchard", "otter", "oyster"),
    *("paddle", "pantry", "parcel", "pebble", "pepper", "pillow", "pilot", "planet", "plaza"),
    *("pocket", "pollen", "portal", "prairie", "pumpkin", "puzzle", "quarry", "quartz"),
    *("quiver", "rabbit", "radish", "rafter", "rain", "raven", "ribbon", "ripple", "river"),
    *("rocket", "saddle", "saffron", "salmon", "sapphire", "scarlet", "shadow", "shelter"),
    *("signal", "silver", "sketch", "slipper", "socket", "spindle", "spruce", "stable"),
    *("summit", "sunset", "tablet", "tangle", "temple", "thimble", "thunder", "timber"),
    *("tinsel", "topaz", "tractor", "tulip", "tunnel", "turnip", "umbrella", "valley"),
    *("velvet", "violet", "voyage", "walnut", "wander", "whistle", "willow", "window"),
    *("winter", "wizard", "yonder", "zenith", "zephyr", "zipper"),
)

# Big free-mail providers whose names bots forge in HELO (mail.<provider>).
BIG_PROVIDERS = (
    *("yahoo.com", "hotmail.com", "gmail.com", "aol.com", "msn.com", "outlook.com"),
    *("web.de", "gmx.de", "t-online.de", "freenet.de", "mail.ru", "yandex.ru"),
)

# Foreign consumer ISPs of the external zombies (invented; all under .example).
FOREIGN_ISPS = (
    *("telenova", "kabelnord", "orbitel", "netvia", "skyline-bb", "ruralnet", "vivanet"),
    *("pampanet", "andescom", "balticom", "danubia", "nilecom", "sakura-bb", "hanriver"),
    *("mekongtel", "sertaonet", "oceanica", "karoo-online", "steppe-tel", "fjordnett"),
)

WINDOWS_MACHINES = ("HOME-PC", "USER-PC", "DESKTOP", "OFFICE", "LAPTOP", "FAMILIE", "PC")

# Synonym swaps for subject variants (lower-case keys; whole words only).
SYNONYMS = {
    "free": ("FREE", "complimentary", "no-cost", "gratis"),
    "offer": ("deal", "promotion", "special", "bargain"),
    "cheap": ("low-cost", "affordable", "discount", "budget"),
    "account": ("profile", "membership", "mailbox", "login"),
    "order": ("purchase", "shipment", "package", "delivery"),
    "now": ("today", "immediately", "right away", "at once"),
    "your": ("Your", "YOUR", "ur", "your own"),
    "new": ("NEW", "latest", "brand-new", "fresh"),
    "money": ("cash", "funds", "income", "profit"),
    "urgent": ("URGENT", "important", "immediate", "final"),
    "konto": ("Kundenkonto", "Benutzerkonto", "Konto", "Zugang"),
    "angebot": ("Sonderangebot", "Aktion", "Gutschein", "Rabatt"),
    "jetzt": ("sofort", "heute", "JETZT", "umgehend"),
    "ihr": ("Ihr", "IHR", "dein", "Ihr persönliches"),
    "bestellung": ("Lieferung", "Sendung", "Paket", "Auftrag"),
    "wichtig": ("WICHTIG", "dringend", "eilig", "letzte Mahnung"),
}

GREETINGS = {
    "en": ("Dear {first},", "Hello {first},", "Hi {first}!", "Dear {first} {last},"),
    "de": ("Hallo {first},", "Guten Tag {first} {last},", "Sehr geehrte/r {first} {last},"),
}
REFERENCES = {
    "en": ("Order #{order} - total ${price}", "Ref: {order} ({price} USD)", "Invoice {order}"),
    "de": ("Bestellnummer: {order} - Betrag: {price} EUR", "Vorgang {order}", "Rechnung {order}"),
}
SUBJECT_PREFIXES = {"en": ("RE: ", "Re: ", "Fwd: ", "FW: "), "de": ("AW: ", "WG: ", "Re: ")}
