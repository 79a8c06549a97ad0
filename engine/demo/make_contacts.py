"""Generate the demo's bundled day of customer contacts (engine/demo/data/contacts.jsonl).

Deterministic (seeded): run ``python -m engine.demo.make_contacts`` to regenerate. The file is
committed so the demo needs nothing but the repository. Each line is one inbound contact:
when it arrives (local time of the care center), on which channel, from whom, what it says.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("data") / "contacts.jsonl"

FIRST = ["Anna", "Bram", "Chloé", "Daan", "Emma", "Finn", "Greta", "Hugo", "Iris", "Jonas",
         "Klara", "Lars", "Mila", "Noah", "Olga", "Pieter", "Quinn", "Rosa", "Sven", "Tess",
         "Ulrich", "Vera", "Willem", "Xenia", "Yusuf", "Zoë", "Lotte", "Max", "Sophie", "Ruben"]
LAST = ["de Vries", "Jansen", "Müller", "Schmidt", "Bakker", "Visser", "Smit", "Meyer",
        "Wagner", "Peeters", "Dubois", "Becker", "Hoffmann", "van Dijk", "Mulder", "Bos",
        "Schulz", "Koch", "de Boer", "Richter"]

# topic -> language -> (subject, body) templates
TEXTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "password_reset": {
        "en": [("Forgot my password", "Hi, I forgot my password, please send me a reset link."),
               ("Reset link please", "I can't remember my password. Can you send a reset link to my e-mail?")],
        "nl": [("Wachtwoord vergeten", "Hallo, ik ben mijn wachtwoord vergeten (forgot password), stuur me een reset link alstublieft.")],
        "de": [("Passwort vergessen", "Ich habe mein Passwort vergessen (forgot password). Bitte schicken Sie mir einen reset link.")],
    },
    "access_problem": {
        "en": [("Locked out of my account", "I am locked out and no longer have access to my recovery e-mail."),
               ("Two-factor device lost", "My phone with the authenticator app was stolen and now I cannot log in.")],
        "nl": [("Account geblokkeerd", "Mijn account is geblokkeerd en ik heb geen toegang meer tot mijn herstel-e-mail.")],
        "de": [("Konto gesperrt", "Mein Konto ist gesperrt und ich habe keinen Zugriff mehr auf meine Wiederherstellungs-E-Mail.")],
    },
    "complaint": {
        "en": [("Complaint about my delivery", "This is the third time my order arrives damaged. I want to file a formal complaint."),
               ("Very unhappy with your service", "Your technician never showed up although I took a day off. I demand compensation.")],
        "nl": [("Klacht over levering", "Dit is de derde keer dat mijn bestelling beschadigd aankomt. Ik wil een klacht indienen.")],
        "de": [("Beschwerde", "Der Techniker ist nicht gekommen, obwohl ich mir frei genommen habe. Ich möchte mich beschweren.")],
    },
    "billing": {
        "en": [("Question about my invoice", "My invoice for October shows a charge I don't recognise. Can you explain?"),
               ("Charged twice", "I was charged twice for the same subscription this month, please refund one payment.")],
        "nl": [("Vraag over mijn factuur", "Op mijn factuur van oktober staat een bedrag dat ik niet herken. Kunt u dat uitleggen?")],
        "de": [("Frage zur Rechnung", "Auf meiner Rechnung steht ein Betrag, den ich nicht zuordnen kann. Bitte um Erklärung.")],
    },
    "warranty": {
        "en": [("Warranty claim", "My coffee machine stopped working after eight months. I enclose the receipt and ask for a repair under warranty.")],
        "nl": [("Garantieclaim", "Mijn koffiemachine werkt na acht maanden niet meer. Bijgaand de kassabon; ik vraag reparatie onder garantie.")],
        "de": [("Garantieanspruch", "Meine Kaffeemaschine funktioniert nach acht Monaten nicht mehr. Anbei der Kassenbon, ich bitte um Garantiereparatur.")],
    },
    "general": {
        "en": [("Opening hours", "What are your opening hours on Saturday?"),
               ("Delivery time", "How long does delivery to Belgium usually take?"),
               ("Change my address", "How do I change the delivery address in my account?")],
        "nl": [("Openingstijden", "Wat zijn jullie openingstijden op zaterdag?"),
               ("Levertijd", "Hoe lang duurt een levering naar België meestal?")],
        "de": [("Öffnungszeiten", "Wie sind Ihre Öffnungszeiten am Samstag?"),
               ("Lieferzeit", "Wie lange dauert die Lieferung nach Österreich normalerweise?")],
    },
}

# channel mix per topic (the channels customers really use for it)
CHANNELS: dict[str, list[tuple[str, int]]] = {
    "password_reset": [("email", 5), ("web", 4), ("chat", 2)],
    "access_problem": [("phone", 5), ("email", 3), ("web", 2)],
    "complaint": [("email", 4), ("phone", 3), ("social", 2), ("letter", 1)],
    "billing": [("email", 4), ("phone", 3), ("web", 2)],
    "warranty": [("letter", 5), ("fax", 2), ("email", 2)],
    "general": [("chat", 6), ("social", 2), ("web", 2), ("sms", 1)],
}
TOPIC_WEIGHTS = [("password_reset", 26), ("access_problem", 12), ("complaint", 10),
                 ("billing", 16), ("warranty", 8), ("general", 28)]
LANGS = [("en", 5), ("nl", 3), ("de", 2)]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    names, weights = zip(*weighted, strict=True)
    return rng.choices(names, weights=weights)[0]


def generate(n: int = 420, seed: int = 20261122) -> list[dict[str, object]]:
    rng = random.Random(seed)
    customers = []
    for i in range(160):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        slug = f"{first}.{last}".lower().replace(" ", "").replace("é", "e").replace("ë", "e").replace("ü", "u")
        customers.append({
            "name": f"{first} {last}",
            "email": f"{slug}{i}@example.org",
            "phone": f"+31 6 {rng.randrange(10_000_000, 99_999_999)}",
            "handle": f"@{slug.replace('.', '_')}{i}",
            "customer_number": f"K{100000 + i}",
            "tier": rng.choices(["standard", "silver", "gold"], weights=[70, 20, 10])[0],
        })
    contacts = []
    for k in range(n):
        # arrivals: a morning peak, a lunch dip, an afternoon peak (08:00-19:00)
        hour = rng.choices(range(8, 19), weights=[9, 12, 11, 8, 6, 9, 10, 8, 6, 4, 2])[0]
        at = f"{hour:02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        topic = _pick(rng, TOPIC_WEIGHTS)
        lang = _pick(rng, LANGS)
        subject, body = rng.choice(TEXTS[topic].get(lang) or TEXTS[topic]["en"])
        channel = _pick(rng, CHANNELS[topic])
        cust = rng.choice(customers)
        ident: dict[str, str] = {"name": str(cust["name"]), "customer_number": str(cust["customer_number"])}
        if channel in ("email", "web", "letter", "fax"):
            ident["email"] = str(cust["email"])
        if channel in ("phone", "sms"):
            ident["phone"] = str(cust["phone"])
        if channel == "social":
            ident["handle"] = str(cust["handle"])
        if channel == "chat":
            ident["email"] = str(cust["email"])
        contacts.append({
            "id": f"D{k:04d}", "at": at, "channel": channel, "language": lang,
            "topic": topic, "tier": cust["tier"], "customer": ident,
            "subject": subject, "body": body,
        })
    contacts.sort(key=lambda c: str(c["at"]))
    return contacts


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for c in generate():
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
