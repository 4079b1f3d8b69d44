"""Generate `training/capability_items.jsonl`, the built-in multiple-choice capability benchmark.

The items were written for this project (no dataset is copied): easy questions across several
categories (capitals, animals, colours, science, general knowledge, opposites, synonyms, arithmetic,
calendar and units, common sense), so that a small instruct model (SmolLM2-135M-Instruct) is above
chance (25%) without being at ceiling. Each item has four distinct choices, one correct; distractors
are wrong but plausible. The correct choice's position is shuffled with a fixed seed and balanced
exactly over A-D.

Run it from the repository root to regenerate the file byte-identically:

    python training/make_capability_items.py            # writes training/capability_items.jsonl
    python training/make_capability_items.py --check    # exit 1 if the file is not up to date
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 20240605
OUT = Path(__file__).with_name("capability_items.jsonl")

# (question, answer, [three wrong but plausible answers])
Fact = tuple[str, str, list[str]]

# (country, capital, [three other cities, none of them the capital])
CAPITALS: list[tuple[str, str, list[str]]] = [
    ("France", "Paris", ["Lyon", "Marseille", "Nice"]),
    ("Germany", "Berlin", ["Munich", "Hamburg", "Frankfurt"]),
    ("Italy", "Rome", ["Milan", "Naples", "Venice"]),
    ("Spain", "Madrid", ["Barcelona", "Seville", "Valencia"]),
    ("Portugal", "Lisbon", ["Porto", "Faro", "Braga"]),
    ("the United Kingdom", "London", ["Manchester", "Liverpool", "Birmingham"]),
    ("Ireland", "Dublin", ["Cork", "Galway", "Limerick"]),
    ("the Netherlands", "Amsterdam", ["Rotterdam", "Utrecht", "Eindhoven"]),
    ("Belgium", "Brussels", ["Antwerp", "Ghent", "Bruges"]),
    ("Greece", "Athens", ["Thessaloniki", "Patras", "Sparta"]),
    ("Russia", "Moscow", ["Saint Petersburg", "Kazan", "Novosibirsk"]),
    ("Poland", "Warsaw", ["Krakow", "Gdansk", "Wroclaw"]),
    ("Sweden", "Stockholm", ["Gothenburg", "Malmo", "Uppsala"]),
    ("Norway", "Oslo", ["Bergen", "Trondheim", "Stavanger"]),
    ("Denmark", "Copenhagen", ["Aarhus", "Odense", "Aalborg"]),
    ("Finland", "Helsinki", ["Tampere", "Turku", "Oulu"]),
    ("Austria", "Vienna", ["Salzburg", "Graz", "Innsbruck"]),
    ("Hungary", "Budapest", ["Debrecen", "Szeged", "Pecs"]),
    ("the Czech Republic", "Prague", ["Brno", "Ostrava", "Plzen"]),
    ("Turkey", "Ankara", ["Istanbul", "Izmir", "Antalya"]),
    ("Egypt", "Cairo", ["Alexandria", "Giza", "Luxor"]),
    ("Kenya", "Nairobi", ["Mombasa", "Kisumu", "Nakuru"]),
    ("Nigeria", "Abuja", ["Lagos", "Kano", "Ibadan"]),
    ("Morocco", "Rabat", ["Casablanca", "Marrakesh", "Fez"]),
    ("Ethiopia", "Addis Ababa", ["Gondar", "Dire Dawa", "Mekelle"]),
    ("Japan", "Tokyo", ["Osaka", "Kyoto", "Yokohama"]),
    ("China", "Beijing", ["Shanghai", "Guangzhou", "Shenzhen"]),
    ("South Korea", "Seoul", ["Busan", "Incheon", "Daegu"]),
    ("India", "New Delhi", ["Mumbai", "Kolkata", "Bangalore"]),
    ("Thailand", "Bangkok", ["Phuket", "Chiang Mai", "Pattaya"]),
    ("Vietnam", "Hanoi", ["Ho Chi Minh City", "Da Nang", "Hue"]),
    ("the Philippines", "Manila", ["Cebu City", "Davao City", "Baguio"]),
    ("Pakistan", "Islamabad", ["Karachi", "Lahore", "Peshawar"]),
    ("Iran", "Tehran", ["Isfahan", "Shiraz", "Tabriz"]),
    ("Saudi Arabia", "Riyadh", ["Jeddah", "Mecca", "Medina"]),
    ("Australia", "Canberra", ["Sydney", "Melbourne", "Perth"]),
    ("New Zealand", "Wellington", ["Auckland", "Christchurch", "Dunedin"]),
    ("Canada", "Ottawa", ["Toronto", "Vancouver", "Montreal"]),
    ("the United States", "Washington, D.C.", ["New York City", "Los Angeles", "Chicago"]),
    ("Mexico", "Mexico City", ["Guadalajara", "Cancun", "Monterrey"]),
    ("Brazil", "Brasilia", ["Rio de Janeiro", "Sao Paulo", "Salvador"]),
    ("Argentina", "Buenos Aires", ["Cordoba", "Rosario", "Mendoza"]),
    ("Chile", "Santiago", ["Valparaiso", "Concepcion", "Antofagasta"]),
    ("Peru", "Lima", ["Cusco", "Arequipa", "Trujillo"]),
    ("Colombia", "Bogota", ["Medellin", "Cali", "Cartagena"]),
    ("Cuba", "Havana", ["Santiago de Cuba", "Camaguey", "Holguin"]),
]

ANIMALS: list[Fact] = [
    ('Which animal says "moo"?', "a cow", ["a dog", "a cat", "a duck"]),
    ("Which animal barks?", "a dog", ["a cat", "a sheep", "a goldfish"]),
    ("What sound does a cat make?", "meow", ["moo", "quack", "oink"]),
    ("What sound does a duck make?", "quack", ["moo", "woof", "baa"]),
    ("How many legs does a spider have?", "eight", ["six", "four", "ten"]),
    ("How many legs does an insect have?", "six", ["eight", "four", "ten"]),
    ("How many legs does a dog have?", "four", ["two", "six", "eight"]),
    ("How many legs does a chicken have?", "two", ["four", "six", "three"]),
    (
        "Which animal is known as the king of the jungle?",
        "the lion",
        ["the elephant", "the monkey", "the zebra"],
    ),
    ("What is the largest animal on Earth?", "the blue whale", ["the elephant", "the shark", "the giraffe"]),
    ("What is the tallest animal in the world?", "the giraffe", ["the elephant", "the horse", "the camel"]),
    ("Which animal has a long trunk?", "an elephant", ["a giraffe", "a rhinoceros", "a hippopotamus"]),
    ("Which bird lives in Antarctica and cannot fly?", "the penguin", ["the eagle", "the parrot", "the owl"]),
    ("What do bees make?", "honey", ["milk", "silk", "wool"]),
    ("What is a baby dog called?", "a puppy", ["a kitten", "a calf", "a foal"]),
    ("What is a baby cat called?", "a kitten", ["a puppy", "a cub", "a chick"]),
    ("What is a baby cow called?", "a calf", ["a lamb", "a foal", "a piglet"]),
    ("What is a baby sheep called?", "a lamb", ["a calf", "a foal", "a piglet"]),
    ("What is a young frog called?", "a tadpole", ["a caterpillar", "a cub", "a duckling"]),
    (
        "Which African animal has black and white stripes?",
        "the zebra",
        ["the lion", "the elephant", "the camel"],
    ),
    (
        "Which animal has a hump and lives in the desert?",
        "the camel",
        ["the horse", "the zebra", "the penguin"],
    ),
    ("Which animal carries its house, a shell, on its back?", "a snail", ["a rabbit", "a frog", "a mouse"]),
    ("Which animal gives us wool?", "the sheep", ["the cow", "the pig", "the chicken"]),
    (
        "Which farm bird lays the eggs people eat for breakfast?",
        "the chicken",
        ["the crow", "the eagle", "the parrot"],
    ),
    ("What does a caterpillar turn into?", "a butterfly", ["a spider", "a bee", "a frog"]),
    ("Where do fish live?", "in water", ["in trees", "in the desert", "under the ground"]),
    ("Which drink comes from cows?", "milk", ["orange juice", "coffee", "lemonade"]),
    ("What is the fastest land animal?", "the cheetah", ["the lion", "the horse", "the elephant"]),
    (
        "Which animal hops and carries its baby in a pouch?",
        "the kangaroo",
        ["the rabbit", "the frog", "the squirrel"],
    ),
    ("What do pandas mostly eat?", "bamboo", ["fish", "meat", "honey"]),
    ("Which sea animal has eight arms?", "the octopus", ["the starfish", "the jellyfish", "the crab"]),
    ("Which mammal can fly?", "the bat", ["the eagle", "the bee", "the owl"]),
    ("What do spiders spin?", "webs", ["nests", "honey", "shells"]),
    (
        "Which animal is very slow and has a hard shell?",
        "the tortoise",
        ["the cheetah", "the rabbit", "the horse"],
    ),
]

COLOURS: list[Fact] = [
    ("What colour is the sky on a clear day?", "blue", ["green", "red", "yellow"]),
    ("What colour is grass?", "green", ["blue", "purple", "orange"]),
    ("What colour is a ripe banana?", "yellow", ["blue", "purple", "red"]),
    ("What colour is fresh snow?", "white", ["black", "green", "red"]),
    ("What colour is coal?", "black", ["white", "yellow", "pink"]),
    ("What colour do you get when you mix red and white?", "pink", ["green", "blue", "black"]),
    ("What colour do you get when you mix blue and yellow?", "green", ["orange", "purple", "pink"]),
    ("What colour do you get when you mix red and yellow?", "orange", ["green", "purple", "blue"]),
    ("What colour do you get when you mix red and blue?", "purple", ["green", "orange", "yellow"]),
    ("What colour is a stop sign?", "red", ["green", "blue", "purple"]),
    ("What colour is a ripe tomato?", "red", ["blue", "grey", "white"]),
    ("What colour is milk?", "white", ["green", "blue", "red"]),
    ("At a traffic light, which colour means go?", "green", ["red", "purple", "black"]),
    ("At a traffic light, which colour means stop?", "red", ["green", "blue", "white"]),
    ("What colour are most leaves in summer?", "green", ["blue", "white", "black"]),
    ("What colour is milk chocolate?", "brown", ["green", "blue", "yellow"]),
    ("What colour is a polar bear's fur?", "white", ["brown", "black", "green"]),
    ("What colour is a lemon?", "yellow", ["blue", "purple", "black"]),
    ("What colour are ripe strawberries?", "red", ["blue", "white", "black"]),
    ("How many colours are there in a rainbow?", "seven", ["five", "three", "ten"]),
    ("What colour is the inside of a watermelon?", "red", ["blue", "black", "purple"]),
    ("What colour is a crow?", "black", ["white", "pink", "orange"]),
]

SCIENCE: list[Fact] = [
    ("At what temperature in degrees Celsius does water freeze?", "0", ["10", "50", "100"]),
    ("At what temperature in degrees Celsius does water boil at sea level?", "100", ["0", "50", "200"]),
    ("What do plants use from the sun to make their food?", "light", ["sound", "darkness", "plastic"]),
    ("Which gas do people need to breathe in to stay alive?", "oxygen", ["carbon dioxide", "helium", "neon"]),
    ("Which gas do plants take in from the air to make food?", "carbon dioxide", ["helium", "neon", "argon"]),
    ("What is the closest star to Earth?", "the Sun", ["the Moon", "Mars", "Venus"]),
    ("Which planet does the Moon go around?", "Earth", ["Mars", "Jupiter", "Venus"]),
    ("Which planet do we live on?", "Earth", ["Mars", "Venus", "Jupiter"]),
    ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Saturn"]),
    ("Which is the largest planet in our solar system?", "Jupiter", ["Earth", "Mars", "Mercury"]),
    ("Which planet is famous for its large rings?", "Saturn", ["Mars", "Mercury", "Earth"]),
    ("What is ice?", "frozen water", ["melted glass", "hard plastic", "dry sand"]),
    (
        "What pulls things down to the ground when you drop them?",
        "gravity",
        ["magnetism", "wind", "electricity"],
    ),
    ("What is H2O commonly called?", "water", ["salt", "sugar", "air"]),
    ("What is the chemical symbol for oxygen?", "O", ["Ox", "H", "C"]),
    ("What is the chemical symbol for gold?", "Au", ["Ag", "Go", "Gd"]),
    ("How many hearts does a person have?", "one", ["two", "three", "four"]),
    ("Which organ pumps blood around the body?", "the heart", ["the lungs", "the stomach", "the brain"]),
    ("Which organs do people breathe with?", "the lungs", ["the heart", "the liver", "the kidneys"]),
    ("Which organ do you think with?", "the brain", ["the heart", "the stomach", "the liver"]),
    ("Which part of the body do you see with?", "the eyes", ["the ears", "the nose", "the hands"]),
    ("Which part of the body do you hear with?", "the ears", ["the eyes", "the mouth", "the feet"]),
    ("Which part of the body do you smell with?", "the nose", ["the ears", "the elbows", "the knees"]),
    ("How many bones does an adult human have?", "206", ["106", "306", "52"]),
    ("What do we call small balls of ice that fall from the sky?", "hail", ["fog", "dew", "mist"]),
    ("What does a thermometer measure?", "temperature", ["weight", "length", "speed"]),
    ("Which tool shows you which direction is north?", "a compass", ["a thermometer", "a ruler", "a clock"]),
    ("What does a seed grow into?", "a plant", ["a rock", "a bird", "a cloud"]),
    ("What do we call water that falls from clouds?", "rain", ["smoke", "dust", "sand"]),
    ("Which metal is a liquid at room temperature?", "mercury", ["iron", "gold", "copper"]),
    ("What does a magnet attract?", "iron", ["wood", "glass", "paper"]),
    ("What is the Sun?", "a star", ["a planet", "a moon", "a comet"]),
]

GENERAL: list[Fact] = [
    (
        "What is the biggest ocean on Earth?",
        "the Pacific Ocean",
        ["the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean"],
    ),
    ("What is the largest continent?", "Asia", ["Africa", "Europe", "Australia"]),
    ("What is the longest river in Africa?", "the Nile", ["the Amazon", "the Danube", "the Thames"]),
    ("On which continent is Brazil?", "South America", ["Africa", "Europe", "Asia"]),
    (
        "What is the tallest mountain in the world?",
        "Mount Everest",
        ["Mont Blanc", "Kilimanjaro", "Mount Fuji"],
    ),
    (
        "What is the name of the large desert in northern Africa?",
        "the Sahara",
        ["the Gobi", "the Mojave", "the Atacama"],
    ),
    ("Which country is famous for the Eiffel Tower?", "France", ["Italy", "Spain", "Germany"]),
    ("In which country are the pyramids of Giza?", "Egypt", ["Mexico", "Greece", "India"]),
    ("In which country do kangaroos live in the wild?", "Australia", ["Canada", "Brazil", "Norway"]),
    ("What language is mainly spoken in Spain?", "Spanish", ["Portuguese", "Italian", "French"]),
    ("What language is mainly spoken in Brazil?", "Portuguese", ["Spanish", "French", "English"]),
    ("What is the currency of Japan?", "the yen", ["the won", "the yuan", "the euro"]),
    (
        'Who wrote "Romeo and Juliet"?',
        "William Shakespeare",
        ["Charles Dickens", "Jane Austen", "Mark Twain"],
    ),
    (
        "Who painted the Mona Lisa?",
        "Leonardo da Vinci",
        ["Pablo Picasso", "Vincent van Gogh", "Claude Monet"],
    ),
    (
        "Who was the first person to walk on the Moon?",
        "Neil Armstrong",
        ["Buzz Aldrin", "Yuri Gagarin", "John Glenn"],
    ),
    ("What is the main ingredient of bread?", "flour", ["sugar", "rice", "butter"]),
    ("What do bees collect from flowers to make honey?", "nectar", ["sand", "bark", "salt"]),
    (
        "Which fruit is said to keep the doctor away if you eat one a day?",
        "an apple",
        ["a banana", "an orange", "a grape"],
    ),
    (
        "Which musical instrument has black and white keys?",
        "the piano",
        ["the guitar", "the drum", "the violin"],
    ),
    ("How many strings does a standard guitar have?", "six", ["four", "eight", "three"]),
    ("What shape has three sides?", "a triangle", ["a square", "a circle", "a pentagon"]),
    ("How many sides does a square have?", "four", ["three", "five", "six"]),
    ("How many sides does a hexagon have?", "six", ["five", "seven", "eight"]),
    ("What shape is a football?", "a sphere", ["a cube", "a cone", "a pyramid"]),
    ("How many continents are there?", "seven", ["five", "nine", "twelve"]),
    ("What is frozen water called?", "ice", ["steam", "salt", "glass"]),
]

# (word, opposite, a near-synonym of the word: a plausible wrong answer), grouped by part of speech.
OPPOSITES: dict[str, list[tuple[str, str, str]]] = {
    "adjective": [
        ("hot", "cold", "warm"),
        ("big", "small", "large"),
        ("fast", "slow", "quick"),
        ("happy", "sad", "cheerful"),
        ("open", "closed", "unlocked"),
        ("wet", "dry", "damp"),
        ("full", "empty", "packed"),
        ("rich", "poor", "wealthy"),
        ("tall", "short", "high"),
        ("early", "late", "prompt"),
        ("first", "last", "initial"),
        ("true", "false", "correct"),
        ("clean", "dirty", "tidy"),
        ("strong", "weak", "powerful"),
        ("loud", "quiet", "noisy"),
        ("thick", "thin", "dense"),
        ("heavy", "light", "weighty"),
        ("cheap", "expensive", "affordable"),
        ("smooth", "rough", "silky"),
        ("safe", "dangerous", "secure"),
        ("easy", "difficult", "simple"),
        ("wide", "narrow", "broad"),
        ("deep", "shallow", "profound"),
        ("alive", "dead", "living"),
        ("sharp", "blunt", "pointed"),
        ("modern", "ancient", "new"),
        ("young", "old", "youthful"),
        ("polite", "rude", "courteous"),
        ("brave", "cowardly", "bold"),
        ("asleep", "awake", "sleeping"),
        ("many", "few", "numerous"),
        ("sweet", "sour", "sugary"),
    ],
    "verb": [
        ("push", "pull", "shove"),
        ("win", "lose", "succeed"),
        ("begin", "end", "start"),
        ("buy", "sell", "purchase"),
        ("give", "take", "offer"),
        ("laugh", "cry", "giggle"),
        ("remember", "forget", "recall"),
        ("love", "hate", "adore"),
        ("arrive", "leave", "come"),
        ("accept", "refuse", "agree"),
        ("float", "sink", "drift"),
    ],
    "noun": [
        ("day", "night", "morning"),
        ("friend", "enemy", "pal"),
        ("question", "answer", "query"),
        ("entrance", "exit", "doorway"),
        ("floor", "ceiling", "ground"),
        ("summer", "winter", "spring"),
        ("top", "bottom", "peak"),
        ("war", "peace", "battle"),
        ("north", "south", "northern"),
    ],
    "other": [
        ("before", "after", "earlier"),
        ("inside", "outside", "within"),
        ("always", "never", "forever"),
        ("up", "down", "high"),
    ],
}

# (word, synonym, antonym: a plausible wrong answer), grouped by part of speech.
SYNONYMS: dict[str, list[tuple[str, str, str]]] = {
    "adjective": [
        ("big", "large", "tiny"),
        ("happy", "glad", "miserable"),
        ("quick", "fast", "slow"),
        ("small", "little", "huge"),
        ("angry", "mad", "calm"),
        ("smart", "clever", "foolish"),
        ("scared", "afraid", "brave"),
        ("rich", "wealthy", "poor"),
        ("easy", "simple", "difficult"),
        ("pretty", "beautiful", "ugly"),
        ("sick", "ill", "healthy"),
        ("correct", "right", "wrong"),
        ("unhappy", "sad", "cheerful"),
        ("difficult", "hard", "easy"),
    ],
    "verb": [
        ("begin", "start", "finish"),
        ("shut", "close", "open"),
        ("shout", "yell", "whisper"),
        ("jump", "leap", "sit"),
        ("speak", "talk", "listen"),
        ("cry", "weep", "laugh"),
        ("finish", "complete", "begin"),
    ],
    "noun": [
        ("rock", "stone", "feather"),
        ("couch", "sofa", "table"),
        ("road", "street", "river"),
        ("child", "kid", "adult"),
    ],
}

# Answers that are close in meaning: never drawn as each other's random distractor.
RELATED = [
    {"small", "short", "thin", "narrow", "shallow", "light", "few"},
    {"late", "slow"},
    {"closed", "empty"},
    {"sad", "cry", "miserable"},
    {"yell", "talk", "weep"},
    {"mad", "angry"},
    {"lose", "sink"},
    {"dead", "old", "ancient", "late"},
]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip

CALENDAR_UNITS: list[Fact] = [
    ("How many days are there in a week?", "7", ["5", "10", "12"]),
    ("How many months are there in a year?", "12", ["10", "7", "24"]),
    ("How many hours are there in a day?", "24", ["12", "60", "48"]),
    ("How many minutes are there in an hour?", "60", ["100", "24", "30"]),
    ("How many seconds are there in a minute?", "60", ["100", "10", "24"]),
    ("How many days are there in a leap year?", "366", ["365", "360", "364"]),
    ("How many days are there in a year that is not a leap year?", "365", ["366", "360", "300"]),
    ("How many weeks are there in a year?", "52", ["12", "48", "100"]),
    ("How many days does February have in a year that is not a leap year?", "28", ["30", "31", "29"]),
    ("How many centimetres are there in a metre?", "100", ["10", "1000", "12"]),
    ("How many millimetres are there in a centimetre?", "10", ["100", "1000", "12"]),
    ("How many metres are there in a kilometre?", "1000", ["100", "10", "10000"]),
    ("How many grams are there in a kilogram?", "1000", ["100", "10", "500"]),
    ("How many minutes are there in half an hour?", "30", ["50", "15", "60"]),
    ("How many hours are there in two days?", "48", ["24", "36", "72"]),
    ("What is the first month of the year?", "January", ["December", "March", "June"]),
    ("What is the last month of the year?", "December", ["January", "November", "October"]),
    ("Which season comes after winter?", "spring", ["summer", "autumn", "winter"]),
    ("Which season comes after spring?", "summer", ["winter", "autumn", "spring"]),
    ("Which season comes after summer?", "autumn", ["spring", "winter", "summer"]),
    ("Which season comes after autumn?", "winter", ["spring", "summer", "autumn"]),
    ("How many seasons are there in a year?", "four", ["two", "six", "twelve"]),
    ("In which month is Christmas Day?", "December", ["January", "November", "July"]),
    ("How many days are there in a weekend?", "two", ["three", "five", "seven"]),
    ("Which is the shortest month of the year?", "February", ["April", "June", "September"]),
    ("How many things are there in a dozen?", "12", ["10", "6", "20"]),
    ("How many years are there in a century?", "100", ["10", "1000", "50"]),
    ("How many years are there in a decade?", "10", ["100", "12", "5"]),
    ("How many cents are there in a dollar?", "100", ["10", "50", "1000"]),
    ("In what unit do we usually measure temperature?", "degrees", ["kilograms", "metres", "litres"]),
    ("Which of these is a unit of length?", "the metre", ["the kilogram", "the litre", "the second"]),
    ("Which of these is a unit of weight?", "the kilogram", ["the metre", "the litre", "the hour"]),
    ("Which of these is a unit of time?", "the second", ["the metre", "the gram", "the litre"]),
    (
        "Which unit is used to measure how much milk is in a bottle?",
        "the litre",
        ["the metre", "the degree", "the hour"],
    ),
    ("How many days are there in the month of January?", "31", ["30", "28", "29"]),
    ("How many days are there in the month of April?", "30", ["31", "28", "29"]),
]

COMMON_SENSE: list[Fact] = [
    ("What do you use to cut paper?", "scissors", ["a spoon", "a pillow", "a towel"]),
    ("What do you use to write on paper?", "a pencil", ["a fork", "a sock", "a plate"]),
    ("What do you use to eat soup?", "a spoon", ["a fork", "a comb", "a hammer"]),
    ("What do you wear on your feet?", "shoes", ["gloves", "a hat", "a scarf"]),
    ("What do you wear on your hands to keep them warm?", "gloves", ["socks", "a belt", "sunglasses"]),
    ("What do you use to brush your teeth?", "a toothbrush", ["a hairbrush", "a broom", "a paintbrush"]),
    ("Where do you usually sleep at night?", "in a bed", ["in a bathtub", "in an oven", "in a fridge"]),
    ("Where do you keep food cold?", "in a fridge", ["in an oven", "in a toaster", "in a microwave"]),
    ("What do you use to open a locked door?", "a key", ["a spoon", "a pencil", "a cup"]),
    ("What do you use to see in the dark?", "a flashlight", ["a mirror", "a blanket", "a book"]),
    (
        "What do you carry so you don't get wet in the rain?",
        "an umbrella",
        ["sunglasses", "a fan", "sandals"],
    ),
    ("What do you use to dry yourself after a shower?", "a towel", ["a pillow", "a plate", "a newspaper"]),
    ("What do you drink when you are thirsty?", "water", ["sand", "soap", "oil"]),
    (
        "What should you do if you feel very tired at night?",
        "go to sleep",
        ["go for a long run", "eat a big meal", "watch a scary film"],
    ),
    ("What do you use to call someone who is far away?", "a phone", ["a spoon", "a hammer", "a lamp"]),
    ("Where do you go to borrow books?", "a library", ["a bakery", "a swimming pool", "a petrol station"]),
    ("Where do you go to buy bread?", "a bakery", ["a library", "a post office", "a bank"]),
    ("Where do you go when you are very sick?", "a hospital", ["a cinema", "a zoo", "a beach"]),
    ("Who do you visit when you have a toothache?", "a dentist", ["a baker", "a pilot", "a farmer"]),
    ("Who flies an aeroplane?", "a pilot", ["a chef", "a dentist", "a farmer"]),
    ("Who puts out fires?", "a firefighter", ["a teacher", "a baker", "a librarian"]),
    ("Who teaches children at school?", "a teacher", ["a pilot", "a plumber", "a farmer"]),
    ("What do you use to cook food in a kitchen?", "a stove", ["a bed", "a bathtub", "a bookshelf"]),
    (
        "What should you do before crossing the road?",
        "look both ways",
        ["close your eyes", "run without looking", "sit down"],
    ),
    ("What do you put on a letter before posting it?", "a stamp", ["a leaf", "a coin", "a button"]),
    ("What do you use to tell the time?", "a clock", ["a ruler", "a thermometer", "a spoon"]),
    ("What do you use to measure how long something is?", "a ruler", ["a clock", "a thermometer", "a scale"]),
    (
        "What do you use to measure how heavy something is?",
        "a scale",
        ["a ruler", "a clock", "a thermometer"],
    ),
    ("What do you use to sweep the floor?", "a broom", ["a fork", "a pillow", "a hat"]),
    (
        "If you drop a glass on a hard floor, what will probably happen?",
        "it will break",
        ["it will bounce", "it will float", "it will grow"],
    ),
    (
        "What happens to ice when you leave it in the sun?",
        "it melts",
        ["it grows bigger", "it turns into stone", "it freezes harder"],
    ),
    ("What does a plant need to grow?", "water", ["paint", "plastic", "darkness"]),
    (
        "Why do people wear coats in winter?",
        "to stay warm",
        ["to stay cool", "to swim faster", "to sleep better"],
    ),
    ("What do you wear on your head when riding a bike?", "a helmet", ["a scarf", "a glove", "a boot"]),
    (
        "What do you turn on to see when it gets dark in a room?",
        "a light",
        ["the tap", "the oven", "the radio"],
    ),
    ("What do you use to wash your hands?", "soap", ["sugar", "sand", "flour"]),
    ("What do you use to dig a hole in the garden?", "a shovel", ["a pencil", "a comb", "a towel"]),
    ("What do you use to hit a nail into wood?", "a hammer", ["a sponge", "a feather", "a screwdriver"]),
    ("What do you usually do with a book?", "read it", ["eat it", "drink it", "wear it"]),
    (
        "What do children carry their school books in?",
        "a backpack",
        ["a bucket", "a frying pan", "a pillowcase"],
    ),
    ("Where do you keep your clothes?", "in a wardrobe", ["in the oven", "in the fridge", "in the bathtub"]),
    ("What do you use to paint a picture?", "a paintbrush", ["a toothbrush", "a spoon", "a fork"]),
    (
        "What should a driver do at a red traffic light?",
        "stop",
        ["drive faster", "keep going", "close their eyes"],
    ),
    ("What do you need to buy things in a shop?", "money", ["leaves", "stones", "buttons"]),
    ("What do people often spread on toast?", "butter", ["shampoo", "glue", "toothpaste"]),
    ("Where do cars get fuel?", "at a petrol station", ["at a library", "at a bakery", "at a hospital"]),
    ("What do you look into to see your own face?", "a mirror", ["a blanket", "a book", "a pillow"]),
    ("What do you plug in to charge a phone?", "a charger", ["a spoon", "a sock", "a cup"]),
    ("Where do you put rubbish?", "in a bin", ["in the fridge", "in a drawer", "in the bath"]),
    ("What is the quickest way to travel across an ocean?", "by plane", ["by bicycle", "by car", "on foot"]),
    ("What do you burn in a campfire?", "wood", ["ice", "water", "sand"]),
    ("What do you wear to protect your eyes from bright sun?", "sunglasses", ["earmuffs", "gloves", "boots"]),
    (
        "How should you speak when someone nearby is sleeping?",
        "quietly",
        ["loudly", "by shouting", "with a trumpet"],
    ),
    ("What do you use to drink a hot cup of tea from?", "a mug", ["a plate", "a fork", "a shoe"]),
    (
        "What do you need to unlock a phone with a passcode?",
        "the passcode",
        ["a hammer", "a stamp", "a recipe"],
    ),
]


def _related(a: str, b: str) -> bool:
    return any(a in group and b in group for group in RELATED)


def _word_items(
    rng: random.Random, table: dict[str, list[tuple[str, str, str]]], template: str
) -> list[tuple[str, str, list[str]]]:
    """Items asking for a word's opposite or synonym: the near-miss plus two same-kind answers of others."""
    out = []
    for rows in table.values():
        answers = [answer for _, answer, _ in rows]
        for word, answer, near_miss in rows:
            pool = [a for a in answers if a not in (answer, near_miss, word) and not _related(a, answer)]
            out.append((template.format(word=word), answer, [near_miss, *rng.sample(pool, 2)]))
    return out


def _number_distractors(rng: random.Random, answer: int, extra: list[int]) -> list[str]:
    """Three plausible wrong numbers: near misses (+-1, +-2, +-10) and common slips in `extra`."""
    candidates = [c for c in [*extra, answer + 1, answer - 1, answer + 2, answer - 2, answer + 10] if c >= 1]
    unique = [c for i, c in enumerate(candidates) if c != answer and c not in candidates[:i]]
    slips = [c for c in unique if c in extra]
    near = [c for c in unique if c not in extra]
    rng.shuffle(near)
    return [str(c) for c in (slips + near)[:3]]


def _arithmetic(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Sums, differences, products and one-step word problems with small numbers."""
    out: list[tuple[str, str, list[str]]] = []
    seen: set[str] = set()

    def add(question: str, answer: int, extra: list[int]) -> None:
        if question not in seen:
            seen.add(question)
            out.append((question, str(answer), _number_distractors(rng, answer, extra)))

    while len(out) < 20:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        add(f"What is {a} + {b}?", a + b, [abs(a - b)])
    while len(out) < 35:
        a, b = rng.randint(5, 30), rng.randint(1, 12)
        if b < a:
            add(f"What is {a} - {b}?", a - b, [a + b])
    while len(out) < 50:
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        add(f"What is {a} x {b}?", a * b, [a + b])
    stories = [
        ("Tom has {a} apples and buys {b} more. How many apples does he have now?", "+"),
        ("A box holds {a} pencils. Sara adds {b} pencils. How many pencils are in the box?", "+"),
        ("There are {a} birds on a tree and {b} fly away. How many birds are left?", "-"),
        ("Mia had {a} sweets and ate {b} of them. How many sweets does she have left?", "-"),
        ("There are {a} bags with {b} oranges in each. How many oranges are there?", "x"),
    ]
    for i in range(10):
        story, op = stories[i % len(stories)]
        if op == "x":
            a, b = rng.randint(2, 6), rng.randint(2, 6)
            add(story.format(a=a, b=b), a * b, [a + b])
        elif op == "-":
            a = rng.randint(6, 20)
            b = rng.randint(1, a - 2)
            add(story.format(a=a, b=b), a - b, [a + b])
        else:
            a, b = rng.randint(2, 15), rng.randint(2, 15)
            add(story.format(a=a, b=b), a + b, [abs(a - b)])
    return out


def _calendar(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Day and month order (the next/previous one) plus unit and calendar facts."""
    out: list[tuple[str, str, list[str]]] = []
    for names, kind in ((DAYS, "day"), (MONTHS, "month")):
        n = len(names)
        for i, name in enumerate(names):
            after, before = names[(i + 1) % n], names[(i - 1) % n]
            out.append(
                (f"Which {kind} comes after {name}?", after, [before, names[(i + 2) % n], names[(i + 3) % n]])
            )
            out.append(
                (
                    f"Which {kind} comes before {name}?",
                    before,
                    [after, names[(i - 2) % n], names[(i - 3) % n]],
                )
            )
    return out + list(CALENDAR_UNITS)


def build_items() -> list[dict]:
    """All items, in category order, with the answer position shuffled and balanced over A-D."""
    rng = random.Random(SEED)
    categories: list[tuple[str, list[tuple[str, str, list[str]]]]] = [
        ("capitals", [(f"What is the capital of {c}?", cap, d) for c, cap, d in CAPITALS]),
        ("animals", ANIMALS),
        ("colours", COLOURS),
        ("science", SCIENCE),
        ("general_knowledge", GENERAL),
        ("opposites", _word_items(rng, OPPOSITES, 'What is the opposite of "{word}"?')),
        ("synonyms", _word_items(rng, SYNONYMS, 'Which word means the same as "{word}"?')),
        ("arithmetic", _arithmetic(rng)),
        ("calendar_units", _calendar(rng)),
        ("common_sense", COMMON_SENSE),
    ]
    rows = [(cat, i, q, a, d) for cat, facts in categories for i, (q, a, d) in enumerate(facts)]
    positions = [i % 4 for i in range(len(rows))]
    rng.shuffle(positions)
    items = []
    for (category, i, question, answer, distractors), position in zip(rows, positions, strict=True):
        wrong = list(distractors)
        rng.shuffle(wrong)
        choices = [*wrong[:position], answer, *wrong[position:]]
        if len(wrong) != 3 or len(set(choices)) != 4:
            raise ValueError(f"{category} item {i} ({question!r}) needs 3 distinct distractors: {choices}")
        items.append(
            {
                "id": f"{category}-{i:03d}",
                "category": category,
                "question": question,
                "choices": choices,
                "answer": position,
            }
        )
    questions = [item["question"] for item in items]
    duplicates = sorted({q for q in questions if questions.count(q) > 1})
    if duplicates:
        raise ValueError(f"duplicate questions: {duplicates}")
    return items


def render(items: list[dict]) -> str:
    """The JSONL text: one item per line, ASCII-escaped, keys in a fixed order."""
    return "".join(json.dumps(item, ensure_ascii=True) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Output file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="Only check that the file is up to date.")
    args = parser.parse_args(argv)
    text = render(build_items())
    if args.check:
        current = args.out.read_bytes().decode("utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run python training/make_capability_items.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_bytes(text.encode("utf-8"))
    print(f"wrote {text.count(chr(10))} items to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
