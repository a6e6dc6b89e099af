"""The name tables the demo company is dressed in, and how much of them a company of a given size uses.

Names are fixed lists (not drawn) so that a demo reads like a business; only which entries a
company gets and how they are combined depends on the seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

# name, SKU code prefix, seasonal shape, product nouns. The first six have six distinct shapes so
# the default company already shows the whole seasonal repertoire.
FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Cooling", "COO", "summer", ("Desk Fan", "Tower Fan", "Air Cooler", "Ceiling Fan")),
    ("Heating", "HEA", "winter", ("Oil Radiator", "Fan Heater", "Convector", "Heated Throw")),
    ("Gift Sets", "GFT", "q4", ("Gift Box", "Tasting Set", "Advent Calendar", "Hamper")),
    ("Kitchen", "KIT", "flat", ("Kettle", "Toaster", "Blender", "Hand Mixer")),
    ("Garden", "GAR", "spring", ("Hose Reel", "Pruner", "Lawn Trimmer", "Planter")),
    ("School & Office", "SCH", "back_to_school", ("Backpack", "Desk Lamp", "Pencil Case", "Organizer")),
    ("Lighting", "LGT", "autumn", ("LED Bulb", "Floor Lamp", "String Lights", "Spotlight")),
    ("Cleaning", "CLN", "flat", ("Vacuum", "Steam Mop", "Window Wiper", "Spray Mop")),
    ("Outdoor Living", "OUT", "summer", ("Parasol", "Grill", "Lounger", "Cooler Box")),
    ("Toys", "TOY", "q4", ("Building Set", "Plush", "Puzzle", "RC Car")),
    ("Bath", "BTH", "flat", ("Towel Rail", "Shower Head", "Bath Mat", "Mirror")),
    ("Travel", "TRV", "bimodal", ("Suitcase", "Travel Adapter", "Neck Pillow", "Duffel")),
    ("Pet Care", "PET", "flat", ("Pet Bed", "Feeder", "Leash", "Scratch Post")),
    ("Tools", "TLS", "spring", ("Drill", "Tool Box", "Sander", "Work Light")),
    ("Textiles", "TEX", "autumn", ("Duvet", "Blanket", "Cushion", "Curtain")),
    ("Audio", "AUD", "q4", ("Headphones", "Speaker", "Soundbar", "Radio")),
    ("Storage", "STO", "bimodal", ("Storage Box", "Shelf Unit", "Drawer Set", "Basket")),
    ("Sports", "SPT", "spring", ("Yoga Mat", "Dumbbell Set", "Bike Light", "Water Bottle")),
    ("Baby", "BAB", "flat", ("Baby Monitor", "Bottle Warmer", "Play Mat", "High Chair")),
    ("Party", "PTY", "q4", ("Party Lights", "Costume Kit", "Tableware Set", "Balloon Pack")),
)
VARIANTS = ("Classic", "Pro", "Compact", "Deluxe", "Eco", "Max", "Mini", "Plus", "Essential", "Elite")
COLOURS = ("White", "Black", "Silver", "Blue", "Red", "Green", "Grey", "Sand", "Graphite", "Copper")

PLANTS = (
    ("Valencia", "VLC"),
    ("Poznan", "POZ"),
    ("Monterrey", "MTY"),
    ("Pune", "PNQ"),
    ("Bursa", "BUR"),
    ("Dong Nai", "DNA"),
    ("Brno", "BRQ"),
    ("Sorocaba", "SOD"),
)
SUPPLIERS = (
    "Iberia Packaging SL",
    "Shenzhen Precision Parts Co.",
    "Rheinland Kunststoff GmbH",
    "Lombardia Motori SpA",
    "Penang Circuits Sdn Bhd",
    "Anatolia Textiles AS",
    "Gdansk Components Sp. z o.o.",
    "Guadalajara Electronics SA",
    "Kyushu Glassworks KK",
    "Nordic Metals AB",
    "Baltic Timber UAB",
    "Ohio Fasteners Inc.",
    "Milano Design Fabrics Srl",
    "Hanoi Plastics JSC",
    "Porto Cork & Foam Lda",
    "Czech Springs s.r.o.",
    "Chennai Castings Pvt Ltd",
    "Sao Paulo Resins Ltda",
    "Taipei Power Cells Corp",
    "Flanders Labels NV",
)
COMMON_MATERIALS = (
    "Carton box small",
    "Carton box medium",
    "Carton box large",
    "Fastener kit",
    "Power cord",
    "User manual",
    "Label set",
    "Foam insert",
    "Screw pack",
    "Pallet wrap",
)
COMPONENTS = (
    "Housing",
    "Motor",
    "Control board",
    "Frame",
    "Cover",
    "Cable harness",
    "Panel",
    "Fabric",
    "Resin granulate",
    "Aluminium profile",
    "Battery pack",
    "Switch",
    "Gear set",
    "Glass part",
    "Spring set",
    "Heating element",
)
CUSTOMERS = (
    "MediaMarkt",
    "Carrefour",
    "Leroy Merlin",
    "Amazon EU",
    "Kingfisher",
    "El Corte Ingles",
    "Tesco",
    "Walmart MX",
    "Otto Group",
    "Bauhaus",
    "Fnac Darty",
    "Coolblue",
)
SALES_OWNERS = (
    "Ana Ruiz (Sales EMEA)",
    "Tom Becker (Key Accounts DACH)",
    "Priya Nair (Sales APAC)",
    "Marcus Lee (Sales Americas)",
    "Sofia Rossi (Sales South Europe)",
)
MARKETING_OWNERS = (
    "Julia Costa (Head of Marketing)",
    "Sam Okafor (Brand Manager)",
    "Lena Vogel (Trade Marketing)",
)
EVENTS = (  # by calendar month, January first
    "January sales",
    "Valentine's promotion",
    "Spring catalogue",
    "Easter promotion",
    "Season opening campaign",
    "Summer TV campaign",
    "Summer sale",
    "Back-to-school campaign",
    "Autumn catalogue",
    "Halloween promotion",
    "Black Friday campaign",
    "Christmas TV campaign",
)


def family_count(n: int) -> int:
    """Six families for a mid-size company, growing slowly (to 20) for very large catalogues."""
    if n < 60:
        return max(2, n // 10)
    return int(np.clip(round(6 + 2 * np.log2(max(n, 300) / 300)), 6, len(FAMILIES)))


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Split an integer total in proportion to weights (deterministic, sums exactly)."""
    w = np.asarray(weights, dtype=float)
    raw = w / w.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = total - int(out.sum())
    if rest > 0:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def pick(names: Sequence[str], idx: np.ndarray) -> pl.Series:
    """A string column of `names[idx]` (gathered, not looped)."""
    return pl.Series(list(names), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))
