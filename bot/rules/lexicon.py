"""Words that mean the same thing to a support desk, across the languages customers write in.

A customer asks "¿cuánto tarda el envío?" and the knowledge base, written in English, says
"Delivery times"; BM25 and Jira's `text ~` only match words, so without help the best section
shares no word with the question. Each group below is one concept of customer service and
online shops (shipping, refunds, warranty, …) in English, Spanish, Portuguese, German and
French, plus the English synonyms customers use for it ("present" for "gift"). A term in a group
brings the group's other words into the search; the knowledge base's own language then matches
whichever is its word.

The groups are general vocabulary of the trade, not a business's products: a shop's own words
belong in its knowledge files (a "Keywords:" line under a heading is searched like the rest).
Words are stored without accents; terms are compared the same way, since customers type
"envio" as often as "envío".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

_GROUPS = """
shipping shipment ship shipped delivery deliver delivered dispatch envio enviar enviado entrega
    entregar entregado despacho frete remessa entregue envoi livraison livrer livre expedition
    versand lieferung liefern geliefert zustellung
order orders purchase pedido pedidos compra encomenda encomendas commande commandes achat
    bestellung bestellungen bestellt kauf
parcel package packet paquete paquetes bulto pacote pacotes embalagem colis paquet paket pakete
    sendung
return returns returning devolver devolucion devoluciones devolvi devolucao devolvo
    retour retourner renvoyer rucksendung rucksenden zuruckschicken ruckgabe retoure
refund refunds refunded reembolso reembolsar reembolsado reintegro estorno
    remboursement rembourser rembourse erstattung ruckerstattung erstatten
warranty guarantee garantia garantias garantie gewahrleistung
payment pay paid paying pago pagar pagado pagamento pagar pago paiement payer paye zahlung
    bezahlen bezahlt zahlen
invoice receipt bill factura facturas recibo fatura facture recu quittance rechnung quittung
    beleg
cancel cancelled canceled cancellation cancelar cancelado cancelacion cancelamento annuler annule
    annulation stornieren storniert stornierung kundigen
account cuenta conta compte konto
password contrasena clave senha motdepasse passwort kennwort
address direccion domicilio endereco morada adresse anschrift
price cost costs prices precio precios coste costo cuesta preco precos custo prix cout couts
    preis preise kosten kostet
discount coupon voucher promo promotion descuento cupon codigo desconto cupom reduction remise
    promotion rabatt gutschein
damaged broken defective faulty danado roto rota defectuoso estropeado danificado quebrado
    quebrada defeituoso endommage casse defectueux abime beschadigt kaputt defekt
late delay delayed retraso retrasado demora atraso atrasado atrasada retard retarde verspatung
    verspatet
tomorrow next nextday express urgent manana amanha demain morgen eilig
gift present presents regalo regalos obsequio presente presentes prenda cadeau cadeaux geschenk
    geschenke
exchange swap replace replacement cambio cambiar reemplazo troca trocar substituir substituicao
    echange echanger remplacer remplacement umtausch umtauschen ersatz
size sizes talla tallas tamano tamanho taille tailles grosse
hours opening open closed horario horarios abierto cerrado aberto fechado horaires ouvert ferme
    offnungszeiten geoffnet geschlossen
store shop tienda loja magasin boutique geschaft laden
tracking track trace seguimiento rastrear rastreo rastreio rastreamento suivi suivre
    sendungsverfolgung verfolgen
lost missing perdido perdida extraviado perdu perdue verloren fehlt
wrong incorrect mistake equivocado incorrecto errado errada erro erreur mauvais falsch fehler
repair fix reparacion reparar arreglar conserto consertar reparation reparer reparatur reparieren
leak leaking leaks gotea gotear fuga vaza vazando vazamento fuit fuite undicht leck tropft
product item article producto articulo produto artigo produit artikel produkt ware
customs duties aduana aduanas alfandega douane zoll
email mail correo courriel
login signin acceder entrar iniciar connexion connecter anmelden einloggen
delete remove erase borrar eliminar excluir apagar supprimer effacer loschen entfernen
subscription suscripcion assinatura abonnement abo
phone telephone telefono telefone celular movil portable handy
"""


def _plain(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _groups(text: str) -> dict[str, tuple[str, ...]]:
    by_word: dict[str, tuple[str, ...]] = {}
    for line in text.replace("\n    ", " ").strip().splitlines():
        words = tuple(dict.fromkeys(_plain(w) for w in line.split()))
        for word in words:
            # A word in two groups ("pago", "promotion") keeps its first: the groups stay disjoint
            # in effect, and expansion never chains from one concept into another.
            by_word.setdefault(word, words)
    return by_word


SYNONYMS = _groups(_GROUPS)


def expand_terms(terms: Sequence[str], *, max_terms: int = 48) -> list[str]:
    """`terms` first, in their order, then the other words of their groups, taken in turns
    (each group's first word, then each group's second, …) so that every concept of the
    question is searched in several languages before any one is in all of them.

    Args:
        terms: from `search_terms.query_terms` (casefolded words).
        max_terms: at most this many in all; the customer's own words are never dropped for
            expansions (when they alone are more, they are all returned).
    """
    out = list(dict.fromkeys(terms))
    seen = {_plain(t) for t in out}
    groups = list(dict.fromkeys(SYNONYMS[p] for p in map(_plain, out) if p in SYNONYMS))
    for rank in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if len(out) >= max_terms:
                return out
            if rank < len(group) and group[rank] not in seen:
                seen.add(group[rank])
                out.append(group[rank])
    return out
