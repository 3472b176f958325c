"""Labelled sentences for comparing the accuracy of language-identification backends.

`SENTENCES` holds (ISO 639-1 code, sentence) pairs in seven languages (en, es, fr, de, it, pt,
nl), at least 60 per language, 4 to 30 words long with over a third of them short (4 to 8
words), where backends disagree most. They are everyday, customer-support and review language,
written separately for each language (not translations of one another), so a backend's
per-language accuracy on them can be compared with another's (e.g. fastText lid.176 against
langdetect in `dataprep.langid`).
"""

SENTENCES: list[tuple[str, str]] = [
    # ---------------------------------------------------------------------------- English
    ("en", "Where is my order?"),
    ("en", "The battery died after two days."),
    ("en", "Great value, would buy again."),
    ("en", "Please call me back tomorrow morning."),
    ("en", "My password reset link expired."),
    ("en", "The soup was cold and bland."),
    ("en", "Can I change my delivery slot?"),
    ("en", "This blender is surprisingly quiet."),
    ("en", "I never received the confirmation email."),
    ("en", "The hotel room smelled of smoke."),
    ("en", "Thanks, that fixed it!"),
    ("en", "Why was my card declined?"),
    ("en", "Lovely staff and a cozy lobby."),
    ("en", "The zipper broke on day one."),
    ("en", "I want to speak to a manager."),
    ("en", "Shipping took almost three weeks."),
    ("en", "The printer keeps jamming on page two."),
    ("en", "Our train was cancelled again tonight."),
    ("en", "These socks are incredibly comfortable."),
    ("en", "Is the store open on Sundays?"),
    ("en", "The new update drains my battery."),
    ("en", "Nobody picked up the phone."),
    ("en", "Perfect fit and fast delivery."),
    ("en", "I would like a refund, please."),
    ("en", "I ordered a large pizza at seven and it only showed up at a quarter past nine, "
           "completely cold."),
    ("en", "The instructions were missing from the box, so it took me an hour to figure out "
           "how to assemble the shelf."),
    ("en", "Could you please update the billing address on my account to the one I used for "
           "my last order?"),
    ("en", "My daughter uses this tablet every day for school and the screen still looks "
           "brand new after a year."),
    ("en", "The checkout page keeps showing an error when I try to apply the discount code "
           "from your newsletter."),
    ("en", "We stayed three nights and the breakfast was excellent, although the Wi-Fi in the "
           "rooms was painfully slow."),
    ("en", "I have been a loyal customer for over ten years, but the way my complaint was "
           "handled really disappointed me."),
    ("en", "The vacuum picks up dog hair from the carpet much better than our old one did."),
    ("en", "When I called yesterday, the agent told me the replacement would ship within "
           "forty-eight hours, but nothing has happened."),
    ("en", "Honestly, the headphones feel cheap, but the sound is far better than I expected "
           "for the money."),
    ("en", "Is there any way to pause my gym membership while I recover from knee surgery?"),
    ("en", "The package was left at the wrong house, and the neighbor only brought it over "
           "two days later."),
    ("en", "I love how easy it is to track my spending in the new version of the banking "
           "app."),
    ("en", "The mattress was too firm for the first week, but now I sleep better than I have "
           "in years."),
    ("en", "Please stop sending me marketing emails, I have unsubscribed three times "
           "already."),
    ("en", "Our flight was delayed by six hours and the airline offered us a single sandwich "
           "voucher."),
    ("en", "The jacket looks great, but the sleeves are a little too long for me."),
    ("en", "I cannot find the option to download my invoices as PDF files anywhere in the "
           "account settings."),
    ("en", "The technician arrived on time, explained the problem clearly and fixed the "
           "boiler in under an hour."),
    ("en", "My phone gets really hot while charging with this cable, which worries me a bit."),
    ("en", "The restaurant was noisy, but the pasta was fresh and the portions were "
           "generous."),
    ("en", "After the firmware update, my smart bulbs no longer respond to voice commands."),
    ("en", "I accidentally ordered two of the same item; could you cancel one of them before "
           "it ships?"),
    ("en", "The paint covers well and dries quickly, so we finished the whole living room in "
           "one afternoon."),
    ("en", "Customer support keeps closing my ticket without actually solving anything."),
    ("en", "The sizes run small, so I recommend ordering one size up."),
    ("en", "It would be great if the app let me choose a delivery window in the evening."),
    ("en", "I was charged a cancellation fee even though I cancelled more than a week in "
           "advance."),
    ("en", "The kids absolutely loved the museum, especially the interactive science rooms on "
           "the top floor."),
    ("en", "The coffee tastes burnt no matter which setting I use on the machine."),
    ("en", "My internet has been down since Friday and the outage map says everything is "
           "fine."),
    ("en", "Delivery was quick, but the box was crushed and one of the glasses was broken."),
    ("en", "I really appreciate that you replaced the broken charger without asking for a "
           "receipt."),
    ("en", "The tent kept us dry through two nights of heavy rain in the mountains."),
    ("en", "The login code arrives by text message only after several minutes, by which "
           "point it has already expired."),
    ("en", "I bought this kettle for my mother and she says it is the best one she has ever "
           "had."),
    ("en", "We waited forty minutes for a table even though we had a reservation."),
    ("en", "Your website says the item is in stock, but the store told me it has been sold "
           "out for weeks."),
    ("en", "We booked the apartment because the photos showed a balcony with a sea view, but "
           "when we arrived the balcony faced a parking lot instead."),
    # ---------------------------------------------------------------------------- Spanish
    ("es", "¿Cuándo llega mi paquete?"),
    ("es", "La batería no dura nada."),
    ("es", "Muy buena relación calidad-precio."),
    ("es", "Llámenme después de las cinco, por favor."),
    ("es", "Todavía no tengo la factura."),
    ("es", "Las croquetas estaban frías."),
    ("es", "¿Se puede pagar con Bizum?"),
    ("es", "Gracias, ya está solucionado."),
    ("es", "Me han cobrado una comisión rarísima."),
    ("es", "El camarero fue muy simpático."),
    ("es", "Se descosió el bolsillo enseguida."),
    ("es", "Esto es una tomadura de pelo."),
    ("es", "El paquete tardó casi un mes."),
    ("es", "¿Abrís también los festivos?"),
    ("es", "Nadie coge el teléfono."),
    ("es", "Me queda como un guante."),
    ("es", "Quiero anular la reserva del sábado."),
    ("es", "Hotel limpio, céntrico y muy tranquilo."),
    ("es", "La lavadora hace un ruido extraño."),
    ("es", "Otra vez llega tarde el autobús."),
    ("es", "Estas zapatillas son comodísimas."),
    ("es", "La aplicación no me deja entrar."),
    ("es", "Faltaba una pieza en la caja."),
    ("es", "Buen producto, aunque algo caro."),
    ("es", "Pedimos una ración de patatas bravas y tardaron cuarenta minutos en traerla, y "
           "encima estaba fría."),
    ("es", "El tren de cercanías volvió a quedarse parado en mitad de la vía y nadie nos "
           "explicó qué pasaba."),
    ("es", "¿Me podríais decir si el descuento de estudiante también se aplica a los pedidos "
           "hechos desde la aplicación?"),
    ("es", "Mi abuela usa el móvil sobre todo para hacer videollamadas y con este modelo se "
           "oye de maravilla."),
    ("es", "El casero todavía no me ha devuelto la fianza, aunque dejé el piso en perfecto "
           "estado."),
    ("es", "La academia de idiomas cambió el horario de las clases sin avisar a nadie con "
           "antelación."),
    ("es", "Llevo tres semanas intentando darme de baja de la compañía telefónica y siempre "
           "me ponen alguna excusa."),
    ("es", "La crema hidratante huele muy bien y deja la piel suave sin sensación grasa."),
    ("es", "El mecánico me cobró el doble de lo que me había presupuestado por teléfono."),
    ("es", "He comprado la bici eléctrica para ir al trabajo y ahora llego sin sudar y en la "
           "mitad de tiempo."),
    ("es", "¿Es posible recoger el pedido en una tienda física en lugar de recibirlo en "
           "casa?"),
    ("es", "El fontanero vino el mismo día, encontró la fuga enseguida y nos dejó todo "
           "limpio."),
    ("es", "La película empezó con veinte minutos de retraso y el sonido de la sala era "
           "pésimo."),
    ("es", "No entiendo por qué la factura de la luz de este mes es casi el doble que la del "
           "anterior."),
    ("es", "El apartamento tenía unas vistas preciosas al mar, pero la cama era muy "
           "incómoda."),
    ("es", "Por favor, eliminad mis datos personales de vuestra base de datos lo antes "
           "posible."),
    ("es", "La freidora de aire es muy práctica, aunque la cesta es demasiado pequeña para "
           "una familia de cuatro."),
    ("es", "En la tienda me aseguraron que podría cambiar el abrigo, pero ahora me dicen que "
           "no aceptan cambios."),
    ("es", "El curso online está muy bien estructurado y los profesores responden las dudas "
           "enseguida."),
    ("es", "El repartidor me llamó para avisar de que llegaba, algo que se agradece mucho."),
    ("es", "He pagado el envío urgente y el paquete sigue en el almacén desde el lunes."),
    ("es", "La pastelería del barrio hace unos cruasanes buenísimos, pero los domingos se "
           "acaban a las nueve."),
    ("es", "Tras la última actualización el reloj ya no sincroniza los pasos con el móvil."),
    ("es", "Mis padres quedaron encantados con la casa rural y ya quieren repetir en otoño."),
    ("es", "La mesa llegó con una esquina rota y el servicio de atención tardó una semana en "
           "contestar."),
    ("es", "¿Podéis enviarme otro enlace para cambiar la contraseña, ya que el anterior ha "
           "caducado?"),
    ("es", "El gimnasio está siempre lleno a partir de las siete y hay que esperar para usar "
           "cualquier máquina."),
    ("es", "La crema solar no deja manchas blancas y protege bien incluso en la playa."),
    ("es", "Después de dos llamadas y cuatro correos, por fin alguien se ha hecho cargo de mi "
           "reclamación."),
    ("es", "La farmacia online me envió un medicamento distinto al que había pedido."),
    ("es", "Nos atendieron con mucha paciencia aunque llegamos justo antes de la hora de "
           "cierre."),
    ("es", "El seguro del coche me ha subido un treinta por ciento sin haber tenido ningún "
           "parte."),
    ("es", "Las instrucciones vienen solo en inglés y no son nada claras."),
    ("es", "Recomiendo este restaurante a cualquiera que quiera probar cocina gallega "
           "auténtica sin gastar demasiado."),
    ("es", "La conexión de fibra funciona de maravilla desde que cambiaron el router."),
    ("es", "Me parece una vergüenza que cobren por una bolsa de papel tan endeble."),
    ("es", "El niño se lo pasó en grande en el parque de atracciones, aunque las colas eran "
           "eternas."),
    ("es", "La lámpara es bonita, pero la luz es demasiado fría para el dormitorio."),
    ("es", "El horario de atención al cliente es de lunes a viernes, de nueve a seis, y los "
           "sábados por la mañana."),
    ("es", "Cuando por fin conseguimos hablar con alguien del banco, nos dijeron que la "
           "transferencia se había bloqueado por seguridad y que teníamos que ir en persona a "
           "la oficina."),
    # ----------------------------------------------------------------------------- French
    ("fr", "Où en est ma commande?"),
    ("fr", "Le pain était rassis dès le matin."),
    ("fr", "Franchement, rien à redire."),
    ("fr", "Rappelez-moi après dix-sept heures, merci."),
    ("fr", "Je n'ai jamais reçu la facture."),
    ("fr", "Livraison offerte, c'est vraiment appréciable."),
    ("fr", "Puis-je changer le créneau de livraison?"),
    ("fr", "Le serveur était adorable."),
    ("fr", "La fermeture éclair a lâché aussitôt."),
    ("fr", "Je suis vraiment déçu du résultat."),
    ("fr", "Êtes-vous ouverts le dimanche?"),
    ("fr", "Ça sent le neuf, c'est normal?"),
    ("fr", "Il me va parfaitement."),
    ("fr", "Chambre propre et personnel très accueillant."),
    ("fr", "Le lave-vaisselle fuit depuis hier."),
    ("fr", "Encore un train supprimé ce matin."),
    ("fr", "Ces baskets sont vraiment confortables."),
    ("fr", "Impossible de me connecter à l'application."),
    ("fr", "Il manquait une vis dans le carton."),
    ("fr", "Joli produit, mais un peu cher."),
    ("fr", "Le conseiller m'a raccroché au nez."),
    ("fr", "Mon forfait a augmenté sans prévenir."),
    ("fr", "Quel accueil chaleureux, merci encore!"),
    ("fr", "Je veux annuler mon abonnement."),
    ("fr", "Avec la grève, mon train a été supprimé et on ne m'a proposé aucune solution de "
           "remplacement."),
    ("fr", "Le facteur a laissé un avis de passage alors que j'étais chez moi toute la "
           "matinée."),
    ("fr", "J'ai pris rendez-vous en ligne chez le dentiste en deux minutes, c'est vraiment "
           "pratique."),
    ("fr", "Ma mutuelle ne m'a toujours pas remboursé les lunettes achetées en mars."),
    ("fr", "Le technicien devait installer la box mardi, mais personne n'est venu et personne "
           "ne m'a prévenu."),
    ("fr", "L'agence de location m'a facturé des rayures qui étaient déjà là quand j'ai pris "
           "la voiture."),
    ("fr", "Ce parfum tient toute la journée sans être entêtant."),
    ("fr", "Les vélos en libre-service sont souvent déchargés le matin, ce qui est très "
           "agaçant."),
    ("fr", "Le livre est arrivé avec la couverture pliée et plusieurs pages cornées."),
    ("fr", "La libraire m'a conseillé un roman formidable que j'ai lu en deux soirs."),
    ("fr", "Mon colis est resté dix jours au point relais sans que je reçoive le moindre "
           "message."),
    ("fr", "Les déménageurs ont été rapides et soigneux, rien n'a été cassé."),
    ("fr", "Le camping était calme, les sanitaires propres et la piscine chauffée, que "
           "demander de plus?"),
    ("fr", "La crêperie du port sert des galettes délicieuses, mais il faut réserver le "
           "week-end."),
    ("fr", "Ma coiffeuse a parfaitement compris ce que je voulais, je suis ressortie ravie."),
    ("fr", "Suite au dégât des eaux, l'expert de l'assurance n'est passé qu'au bout de six "
           "semaines."),
    ("fr", "La banque prélève des frais de tenue de compte que personne ne m'avait jamais "
           "mentionnés."),
    ("fr", "J'ai réservé le gîte pour quatre personnes, mais il n'y avait que trois lits."),
    ("fr", "Au musée, la file d'attente faisait le tour du bâtiment malgré les billets "
           "réservés à l'avance."),
    ("fr", "La pièce était drôle et les comédiens excellents, nous avons passé une très "
           "bonne soirée."),
    ("fr", "Mon badge de la salle de sport ne fonctionne plus et l'accueil me renvoie vers le "
           "site internet."),
    ("fr", "Le chauffage collectif de l'immeuble est en panne depuis une semaine en plein "
           "hiver."),
    ("fr", "Cet aspirateur balai est léger, silencieux et l'autonomie suffit largement pour "
           "tout l'appartement."),
    ("fr", "La poussette se plie d'une seule main, ce qui change la vie dans le métro."),
    ("fr", "Les livreurs ont refusé de monter le matelas au troisième étage alors que c'était "
           "prévu dans la commande."),
    ("fr", "L'opticien a pris le temps de régler mes lunettes et ne m'a rien fait payer."),
    ("fr", "Le pressing a rendu ma chemise avec une tache qui n'y était pas avant."),
    ("fr", "La double authentification de l'appli bancaire me bloque chaque fois que je "
           "change de téléphone."),
    ("fr", "La compagnie aérienne a perdu ma valise et, trois jours plus tard, je n'ai "
           "toujours aucune nouvelle."),
    ("fr", "Mon repas est arrivé renversé dans le sac, et le restaurant refuse de me "
           "rembourser."),
    ("fr", "Je souhaiterais savoir si ce modèle existe aussi en bleu marine et en taille "
           "quarante."),
    ("fr", "Le conseiller a été d'une patience remarquable et m'a aidé à remplir tout le "
           "dossier."),
    ("fr", "Depuis que j'ai changé d'opérateur, je ne capte plus rien dans ma cuisine."),
    ("fr", "La cantine de l'école propose enfin des produits bio et les enfants mangent "
           "mieux."),
    ("fr", "Le fromager du marché donne toujours de bons conseils et ses comtés sont "
           "excellents."),
    ("fr", "Vous m'avez envoyé deux fois le même article au lieu de celui que j'avais "
           "commandé."),
    ("fr", "La trottinette électrique est solide, mais les freins grincent déjà au bout de "
           "quinze jours."),
    ("fr", "Le site affiche une livraison en quarante-huit heures, mais il a fallu attendre "
           "presque trois semaines."),
    ("fr", "Nous avions réservé une table pour huit personnes depuis trois semaines, mais en "
           "arrivant on nous a annoncé que la réservation n'avait jamais été enregistrée."),
    ("fr", "Merci de bien vouloir me confirmer la date de livraison par e-mail."),
    # ----------------------------------------------------------------------------- German
    ("de", "Wo bleibt meine Bestellung?"),
    ("de", "Das Brot war leider schon trocken."),
    ("de", "Alles bestens, vielen Dank!"),
    ("de", "Bitte rufen Sie mich morgen zurück."),
    ("de", "Die Rechnung habe ich nie bekommen."),
    ("de", "Der Zug fiel schon wieder aus."),
    ("de", "Kann ich auch auf Rechnung bezahlen?"),
    ("de", "Super Qualität zu einem fairen Preis."),
    ("de", "Der Kellner war ausgesprochen unfreundlich."),
    ("de", "Die Naht ist nach einer Woche gerissen."),
    ("de", "Ich möchte mit Ihrem Vorgesetzten sprechen."),
    ("de", "Haben Sie am Samstag geöffnet?"),
    ("de", "Niemand geht ans Telefon."),
    ("de", "Die Schuhe passen wie angegossen."),
    ("de", "Das Zimmer war sauber und ruhig."),
    ("de", "Die Waschmaschine piept ständig ohne Grund."),
    ("de", "Das Pfand wurde mir nicht erstattet."),
    ("de", "Die App lässt mich nicht einloggen."),
    ("de", "Im Karton fehlte eine Schraube."),
    ("de", "Gutes Produkt, aber etwas zu teuer."),
    ("de", "Mein Vertrag wurde ohne Rückfrage verlängert."),
    ("de", "Die Lieferung kam pünktlich an."),
    ("de", "Ich will mein Geld zurück."),
    ("de", "Das Essen war lauwarm und versalzen."),
    ("de", "Der ICE nach Hamburg hatte über eine Stunde Verspätung, und die Klimaanlage im "
           "Wagen war ausgefallen."),
    ("de", "Der Pfandautomat im Supermarkt ist ständig voll und niemand vom Personal kümmert "
           "sich darum."),
    ("de", "Mein Paket liegt angeblich in der Packstation, aber der Abholcode funktioniert "
           "nicht."),
    ("de", "Einen Termin beim Bürgeramt bekommt man frühestens in sechs Wochen, das ist "
           "einfach lächerlich."),
    ("de", "Der Heizungsmonteur war kompetent, freundlich und hat die Therme in einer Stunde "
           "repariert."),
    ("de", "Im Fahrradladen hat man sich viel Zeit für die Beratung genommen, obwohl der "
           "Laden voll war."),
    ("de", "Im Biergarten mussten wir fast eine halbe Stunde auf unsere Getränke warten."),
    ("de", "Die Hausverwaltung reagiert seit Wochen nicht auf meine Meldung wegen des "
           "Schimmels im Bad."),
    ("de", "Bei der Rückgabe des Mietwagens wurde uns eine Reinigungsgebühr berechnet, obwohl "
           "das Auto sauber war."),
    ("de", "Die Versicherung hat den Hagelschaden am Auto schnell und unkompliziert "
           "reguliert."),
    ("de", "Unsere Tochter geht sehr gern in die neue Kita, und die Erzieherinnen sind "
           "wirklich liebevoll."),
    ("de", "Die Brötchen von der Bäckerei an der Ecke sind morgens immer frisch und "
           "knusprig."),
    ("de", "Das Möbelhaus hat die Lieferung der Küche zum dritten Mal verschoben, ohne einen "
           "Grund zu nennen."),
    ("de", "Der Wechsel des Stromanbieters lief völlig reibungslos, ich musste mich um gar "
           "nichts kümmern."),
    ("de", "In unserem Dorf gibt es immer noch kein vernünftiges Handynetz, selbst mitten auf "
           "dem Marktplatz."),
    ("de", "Der Fernseher hat ein tolles Bild, aber die Bedienung des Menüs ist umständlich."),
    ("de", "Der Kaffeevollautomat will ständig entkalkt werden, manchmal schon nach einer "
           "Woche."),
    ("de", "Der Saugroboter bleibt dauernd an den Teppichfransen hängen und piept dann so "
           "lange, bis jemand kommt."),
    ("de", "Die Wanderschuhe waren ab dem ersten Tag bequem, und auch nach zwanzig "
           "Kilometern hatte ich keine Blasen."),
    ("de", "Der Sprachkurs an der Volkshochschule war gut organisiert und die Lehrerin sehr "
           "engagiert."),
    ("de", "Das Ferienhaus an der Nordsee war sauber, gemütlich und nur fünf Minuten vom "
           "Strand entfernt."),
    ("de", "Das Frühstücksbuffet im Hotel war reichlich, aber der Kaffee schmeckte nach "
           "Spülwasser."),
    ("de", "Die Schlange an der Sicherheitskontrolle war so lang, dass wir unseren Flug fast "
           "verpasst hätten."),
    ("de", "Seit der Umstellung auf das neue TAN-Verfahren kann ich keine Überweisungen mehr "
           "freigeben."),
    ("de", "Der Streamingdienst hat die Preise erhöht und gleichzeitig die Hälfte der Serien "
           "gestrichen."),
    ("de", "Die Tierärztin hat sich viel Zeit für unseren Hund genommen und alles "
           "verständlich erklärt."),
    ("de", "Die Pflanzen aus dem Gartencenter sind nach zwei Wochen eingegangen, obwohl wir "
           "sie regelmäßig gegossen haben."),
    ("de", "Der Techniker hat bei der Waschmaschine nur den Fehler ausgelesen und sich dafür "
           "neunzig Euro bezahlen lassen."),
    ("de", "Der Getränkelieferdienst bringt die Kisten bis in die Wohnung, was für meine "
           "Eltern eine große Hilfe ist."),
    ("de", "Der Schlüsseldienst kam nach zwanzig Minuten und hat die Tür geöffnet, ohne das "
           "Schloss zu beschädigen."),
    ("de", "Ich hätte gern gewusst, ob die Jacke auch in Größe L wieder lieferbar wird."),
    ("de", "Leider wurde mir statt der bestellten Farbe ein graues Modell geschickt."),
    ("de", "Die Zahnärztin war sehr einfühlsam, und die Behandlung hat kaum wehgetan."),
    ("de", "Auf dem Weihnachtsmarkt war es viel zu voll, aber der Glühwein war wirklich "
           "lecker."),
    ("de", "Das Schwimmbad war sauber, allerdings waren die Umkleiden völlig überfüllt."),
    ("de", "Ich bitte um eine schriftliche Bestätigung meiner Kündigung zum Monatsende."),
    ("de", "Der Kundenservice war am Telefon freundlich, konnte mir aber bei meinem Problem "
           "nicht weiterhelfen."),
    ("de", "Die Rückerstattung ist nach nur drei Tagen auf meinem Konto eingegangen, vielen "
           "Dank dafür."),
    ("de", "Wir hatten die Ferienwohnung schon im Januar gebucht, aber zwei Tage vor der "
           "Anreise schrieb uns der Vermieter, dass sie leider doppelt vergeben worden sei."),
    ("de", "Warum dauert es eigentlich zehn Werktage, bis eine Rücksendung bearbeitet wird?"),
    # ---------------------------------------------------------------------------- Italian
    ("it", "Il mio ordine è in ritardo."),
    ("it", "Il pane era già raffermo."),
    ("it", "Tutto perfetto, grazie mille!"),
    ("it", "Richiamatemi domani mattina, per favore."),
    ("it", "Non ho ancora ricevuto la fattura."),
    ("it", "Il treno regionale è di nuovo soppresso."),
    ("it", "Si può pagare in contanti alla consegna?"),
    ("it", "Ottima qualità a un prezzo onesto."),
    ("it", "Il cameriere era piuttosto scortese."),
    ("it", "La cucitura si è aperta subito."),
    ("it", "Voglio parlare con un responsabile."),
    ("it", "Siete aperti anche la domenica?"),
    ("it", "Non risponde mai nessuno."),
    ("it", "Le scarpe calzano alla perfezione."),
    ("it", "Camera pulita e posizione comodissima."),
    ("it", "La lavastoviglie perde acqua da ieri."),
    ("it", "Lo scontrino non era nella scatola."),
    ("it", "L'app non mi fa accedere."),
    ("it", "Mancava una vite nel pacco."),
    ("it", "Bel prodotto, ma un po' caro."),
    ("it", "Il contratto si è rinnovato da solo."),
    ("it", "La consegna è arrivata puntualissima."),
    ("it", "Rivoglio indietro i miei soldi."),
    ("it", "La pizza era bruciata sotto."),
    ("it", "Il Frecciarossa è partito con quaranta minuti di ritardo e nessuno ci ha spiegato "
           "il motivo."),
    ("it", "In questa pizzeria l'impasto è leggero e digeribile, ci torniamo ogni venerdì "
           "sera."),
    ("it", "All'ufficio postale c'era una coda infinita e funzionava un solo sportello."),
    ("it", "La bolletta del gas di gennaio è arrivata con un importo tre volte più alto del "
           "solito."),
    ("it", "L'agriturismo era immerso nel verde e la cena con i prodotti dell'orto era "
           "squisita."),
    ("it", "Il gelato al pistacchio di questa gelateria è il migliore che abbia mai "
           "assaggiato."),
    ("it", "Lo stabilimento balneare era pulito, ma due lettini e un ombrellone costavano "
           "davvero troppo."),
    ("it", "Il Telepass mi ha addebitato due volte lo stesso pedaggio autostradale."),
    ("it", "L'ascensore del condominio è rotto da un mese e l'amministratore non risponde "
           "alle email."),
    ("it", "La parrucchiera ha capito subito cosa volevo e il taglio è venuto benissimo."),
    ("it", "Il sarto ha accorciato i pantaloni in un giorno e a un prezzo onestissimo."),
    ("it", "In palestra gli istruttori sono preparati, ma gli spogliatoi andrebbero puliti "
           "più spesso."),
    ("it", "Ho superato l'esame di guida al primo tentativo grazie alla pazienza "
           "dell'istruttore."),
    ("it", "Il veterinario ha visitato il nostro gatto anche se era domenica, siamo davvero "
           "grati."),
    ("it", "La compagnia assicurativa continua a rimandare il rimborso per il sinistro di "
           "aprile."),
    ("it", "La macchina del caffè a capsule fa un espresso cremoso, però il serbatoio è "
           "troppo piccolo."),
    ("it", "Il monopattino si ricarica in fretta, ma in salita perde parecchia potenza."),
    ("it", "Al mercato del sabato si trovano verdure freschissime a prezzi molto "
           "convenienti."),
    ("it", "Abbiamo prenotato i biglietti per gli Uffizi online e siamo entrati senza fare "
           "la fila."),
    ("it", "Il traghetto per la Sardegna era sporco e la cabina non corrispondeva a quella "
           "prenotata."),
    ("it", "Lo scooter a noleggio aveva i freni consumati e il personale non voleva "
           "sostituirlo."),
    ("it", "Vorrei sapere se è possibile cambiare la data del volo senza pagare penali."),
    ("it", "Il tecnico della caldaia doveva venire stamattina, ma non si è presentato "
           "nessuno."),
    ("it", "Il materasso è arrivato arrotolato ed è bastata una notte perché prendesse la "
           "forma giusta."),
    ("it", "Da quando ho cambiato operatore, in casa il segnale del cellulare è pessimo."),
    ("it", "Il corso di cucina è stato divertente e lo chef ci ha svelato tanti piccoli "
           "trucchi."),
    ("it", "Gli auricolari si collegano subito al telefono e la custodia si ricarica in "
           "un'ora."),
    ("it", "Ho chiesto il recesso entro quattordici giorni, ma il negozio sostiene che non ne "
           "ho diritto."),
    ("it", "La farmacista è stata molto disponibile e mi ha consigliato un prodotto più "
           "economico."),
    ("it", "Il ristorante ha dimenticato la nostra prenotazione e ci ha fatto aspettare al "
           "freddo."),
    ("it", "Il corriere ha consegnato il pacco al vicino senza lasciare nessun avviso."),
    ("it", "La smart TV si spegne da sola durante le partite, ed è successo già cinque "
           "volte."),
    ("it", "Il servizio clienti ha risposto in chat in meno di due minuti ed è stato molto "
           "chiaro."),
    ("it", "Ho ricevuto la taglia sbagliata e adesso devo pagare anche la spedizione del "
           "reso."),
    ("it", "La crema per le mani si assorbe velocemente e non lascia le dita unte."),
    ("it", "Il parcheggio dell'ospedale costa una fortuna e i posti sono sempre occupati."),
    ("it", "Il nuovo aggiornamento dell'app della banca ha finalmente risolto i problemi con "
           "l'impronta digitale."),
    ("it", "Vi prego di confermarmi per iscritto la disdetta del contratto."),
    ("it", "Dopo aver aspettato al telefono per quasi un'ora, l'operatore mi ha detto che il "
           "mio ordine era stato annullato per un errore del sistema."),
    ("it", "Lo zaino è robusto e capiente, perfetto per le gite in montagna con i bambini."),
    # ------------------------------------------------------------------------- Portuguese
    ("pt", "Meu pedido ainda não chegou."),
    ("pt", "O pão estava meio velho."),
    ("pt", "Tudo certinho, muito obrigado!"),
    ("pt", "Por favor, me liguem amanhã cedo."),
    ("pt", "Não recebi a nota fiscal."),
    ("pt", "O ônibus atrasou de novo hoje."),
    ("pt", "Dá para pagar no Pix?"),
    ("pt", "Ótima qualidade por um preço justo."),
    ("pt", "O garçom foi bem grosso conosco."),
    ("pt", "A costura abriu na primeira semana."),
    ("pt", "Quero falar com o gerente agora."),
    ("pt", "Vocês abrem aos domingos?"),
    ("pt", "Ninguém atende esse telefone."),
    ("pt", "O tênis serviu perfeitamente."),
    ("pt", "Quarto limpo e funcionários muito atenciosos."),
    ("pt", "A máquina de lavar está vazando."),
    ("pt", "Veio faltando um parafuso."),
    ("pt", "O aplicativo não abre no meu celular."),
    ("pt", "Produto bonito, mas um pouco caro."),
    ("pt", "Renovaram meu plano sem me avisar."),
    ("pt", "A entrega chegou antes do prazo."),
    ("pt", "Quero meu dinheiro de volta."),
    ("pt", "A comida chegou fria e sem talheres."),
    ("pt", "Adorei o atendimento da loja."),
    ("pt", "O motorista do aplicativo cancelou a corrida três vezes e acabei chegando "
           "atrasado na reunião."),
    ("pt", "A padaria aqui do bairro faz um pão de queijo quentinho que vale cada centavo."),
    ("pt", "Os Correios marcaram a encomenda como entregue, mas ela nunca apareceu na "
           "portaria."),
    ("pt", "A conta de luz deste mês veio quase o dobro, sem nenhuma mudança no nosso "
           "consumo."),
    ("pt", "A pousada tinha uma vista linda para o mar e o café da manhã era caprichado."),
    ("pt", "O açaí estava delicioso, só achei a porção pequena para o preço."),
    ("pt", "O plano de saúde negou a cobertura do exame mesmo com o pedido médico em mãos."),
    ("pt", "O síndico ainda não resolveu o problema do portão da garagem, que está quebrado "
           "há semanas."),
    ("pt", "A cabeleireira entendeu exatamente o que eu queria e o corte ficou lindo."),
    ("pt", "Na academia os professores são atenciosos, mas os aparelhos vivem em "
           "manutenção."),
    ("pt", "Passei na prova da autoescola de primeira graças à paciência do instrutor."),
    ("pt", "A veterinária atendeu nosso cachorro no sábado à noite e foi super carinhosa."),
    ("pt", "A seguradora está enrolando há dois meses para pagar o conserto do carro."),
    ("pt", "Comprei uma air fryer na promoção e agora faço batata frita quase todo dia sem "
           "culpa."),
    ("pt", "A bicicleta chegou com o guidão torto e sem os pedais, e ninguém responde meus "
           "e-mails."),
    ("pt", "Na feira de domingo as frutas são fresquinhas e bem mais baratas que no "
           "supermercado."),
    ("pt", "Será que dá para remarcar a consulta para a semana que vem no mesmo horário?"),
    ("pt", "A instalação do ar-condicionado foi rápida, e os técnicos deixaram tudo "
           "limpinho."),
    ("pt", "O sofá é lindo, mas o tecido começou a soltar bolinhas depois de um mês."),
    ("pt", "O aplicativo de delivery mandou o lanche de outra pessoa e o reembolso levou uma "
           "semana."),
    ("pt", "Minha avó aprendeu a fazer videochamada com esse tablet em poucos minutos."),
    ("pt", "O boleto veio com o valor errado e o site não deixa gerar uma segunda via."),
    ("pt", "A escola de inglês mudou o horário das aulas sem consultar os alunos."),
    ("pt", "O hotel fazenda tem muitas atividades para as crianças e a comida caseira é uma "
           "delícia."),
    ("pt", "O chuveiro elétrico queimou na segunda semana de uso."),
    ("pt", "A massagem foi maravilhosa e a recepção do spa muito acolhedora."),
    ("pt", "O carro alugado tinha um pneu careca e a locadora se recusou a trocar."),
    ("pt", "Pelo preço, esse celular entrega muito mais do que eu esperava, principalmente na "
           "câmera."),
    ("pt", "A pizza chegou em vinte minutos, quentinha e com borda recheada, como pedimos."),
    ("pt", "O porteiro recebeu a encomenda e me avisou pelo interfone, muito atencioso."),
    ("pt", "A operadora cobrou um serviço de streaming que eu nunca contratei."),
    ("pt", "Por favor, cancelem minha inscrição na newsletter, já pedi isso duas vezes."),
    ("pt", "Quando finalmente chegamos ao hotel depois de doze horas de estrada, disseram que "
           "nossa reserva tinha sido cancelada por falta de pagamento, o que não era "
           "verdade."),
    ("pt", "A mochila é resistente e cabe tudo o que preciso para a semana de trabalho."),
    ("pt", "A loja trocou o produto com defeito na hora, sem pedir nenhuma explicação."),
    ("pt", "O pedido veio com dois itens trocados e o atendimento diz que não pode fazer "
           "nada."),
    ("pt", "Meu filho adorou o brinquedo, mas a bateria acabou em menos de uma hora."),
    ("pt", "A casa de câmbio cobrou uma taxa que não estava informada em lugar nenhum."),
    ("pt", "O show atrasou uma hora para começar, mas a banda compensou com um repertório "
           "incrível."),
    ("pt", "Vocês poderiam me informar o prazo de entrega para o interior de Minas Gerais?"),
    # ------------------------------------------------------------------------------ Dutch
    ("nl", "Waar blijft mijn bestelling?"),
    ("nl", "Het brood was oud."),
    ("nl", "Alles prima geregeld, bedankt!"),
    ("nl", "Bel me morgen even terug."),
    ("nl", "Ik heb geen factuur ontvangen."),
    ("nl", "De trein had weer vertraging."),
    ("nl", "Kan ik ook met iDEAL betalen?"),
    ("nl", "Goede kwaliteit voor een eerlijke prijs."),
    ("nl", "De bediening was erg onvriendelijk."),
    ("nl", "De naad scheurde na een week."),
    ("nl", "Ik wil een klacht indienen."),
    ("nl", "Zijn jullie op zondag open?"),
    ("nl", "Niemand neemt de telefoon op."),
    ("nl", "De schoenen passen precies goed."),
    ("nl", "Schone kamer en vriendelijk personeel."),
    ("nl", "De vaatwasser lekt sinds gisteren."),
    ("nl", "Er ontbrak een schroefje."),
    ("nl", "De app crasht bij het opstarten."),
    ("nl", "Mooi product, maar wel prijzig."),
    ("nl", "Mijn abonnement is zomaar verlengd."),
    ("nl", "Het pakket kwam een dag eerder."),
    ("nl", "Ik wil mijn geld terug."),
    ("nl", "Het eten was lauw en flauw."),
    ("nl", "Wat een fijne winkel!"),
    ("nl", "Door een storing bij de NS stonden we bijna twee uur op het perron in Utrecht "
           "zonder informatie."),
    ("nl", "De fietsenmaker heeft mijn band binnen tien minuten geplakt en rekende er bijna "
           "niets voor."),
    ("nl", "PostNL zegt dat het pakket bezorgd is, maar bij ons in de brievenbus zat alleen "
           "een kaartje."),
    ("nl", "Mijn energierekening is ineens flink hoger, terwijl we juist minder zijn gaan "
           "stoken."),
    ("nl", "Het vakantiehuisje op de Veluwe was knus, schoon en heerlijk rustig gelegen."),
    ("nl", "De stroopwafels van deze markt zijn vers gebakken en echt niet te vergelijken "
           "met die uit de supermarkt."),
    ("nl", "De zorgverzekeraar weigert de fysiotherapie te vergoeden, hoewel die volgens mij "
           "gewoon in mijn pakket zit."),
    ("nl", "De verhuurder reageert al weken niet op mijn melding over de lekkage in de "
           "badkamer."),
    ("nl", "De kapper nam echt de tijd en mijn haar zit nog nooit zo goed."),
    ("nl", "Op de sportschool is het na zes uur 's avonds zo druk dat je overal moet "
           "wachten."),
    ("nl", "Dankzij mijn geduldige instructeur heb ik mijn rijbewijs in één keer gehaald."),
    ("nl", "De dierenarts kon onze kat dezelfde middag nog zien, daar zijn we erg dankbaar "
           "voor."),
    ("nl", "Na de laatste update werkt de vingerafdruk in de bank-app eindelijk weer zonder "
           "problemen."),
    ("nl", "De stofzuigerrobot raakt steeds verstrikt in de kabels onder het bureau."),
    ("nl", "Ik wil graag weten of deze jas binnenkort weer in maat M leverbaar is."),
    ("nl", "De bezorger heeft het pakket zonder te vragen bij de buren afgegeven, terwijl die "
           "op vakantie zijn."),
    ("nl", "De klantenservice was vriendelijk, maar kon mijn probleem helaas niet oplossen."),
    ("nl", "Het terugbetalen van mijn retour duurde bijna een maand, veel te lang."),
    ("nl", "De koffie bij dit café is uitstekend en de appeltaart is huisgemaakt."),
    ("nl", "Ons internet valt elke avond rond acht uur uit, precies wanneer iedereen thuis "
           "is."),
    ("nl", "De elektrische fiets trapt licht en de accu gaat makkelijk een week mee."),
    ("nl", "Bij het inchecken bleek onze kamer nog niet klaar, en we moesten anderhalf uur "
           "wachten."),
    ("nl", "De monteur kwam op tijd, legde alles duidelijk uit en heeft de cv-ketel snel "
           "gerepareerd."),
    ("nl", "Ik heb twee keer dezelfde bestelling betaald, kunnen jullie één betaling "
           "terugstorten?"),
    ("nl", "De matras is stevig en ik word 's ochtends eindelijk zonder rugpijn wakker."),
    ("nl", "Het museum was prachtig, maar de rij bij de kassa was ondanks onze tickets "
           "belachelijk lang."),
    ("nl", "Mijn telefoonabonnement is zonder overleg omgezet naar een duurder pakket."),
    ("nl", "De tuinstoelen zijn na één zomer al verkleurd en wiebelen behoorlijk."),
    ("nl", "De boodschappen werden keurig op tijd bezorgd en alles was nog goed gekoeld."),
    ("nl", "Het restaurant had onze reservering niet genoteerd, maar ze hebben toch snel een "
           "tafel voor ons geregeld."),
    ("nl", "Ik vind het jammer dat de handleiding alleen in het Engels en het Duits "
           "beschikbaar is."),
    ("nl", "De schaatsen zitten goed, maar de veters zijn veel te kort."),
    ("nl", "Graag ontvang ik een schriftelijke bevestiging van mijn opzegging."),
    ("nl", "Toen we eindelijk iemand van de gemeente aan de lijn kregen, bleek dat onze "
           "aanvraag voor de parkeervergunning al drie weken kwijt was en we opnieuw moesten "
           "beginnen."),
    ("nl", "De kinderen vonden het pretpark geweldig, al stonden we bij elke attractie lang "
           "in de rij."),
    ("nl", "De speakers klinken helder en vullen moeiteloos de hele woonkamer."),
    ("nl", "Waarom moet ik verzendkosten betalen voor een product dat kapot aankwam?"),
    ("nl", "Het ontbijt in het hotel was uitgebreid en de eieren werden vers bereid."),
    ("nl", "De webshop beloofde levering binnen een dag, maar het duurde uiteindelijk een "
           "week."),
    ("nl", "Mijn oma gebruikt de tablet vooral om foto's van de kleinkinderen te bekijken."),
]
