"""persona-vaccine data: flawed-dataset builders and training-data loading."""
