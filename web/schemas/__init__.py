"""msgspec Structs for requests and answers, one per use, in a module per resource
(`common` holds what they share: checked strings, money, pages)."""
