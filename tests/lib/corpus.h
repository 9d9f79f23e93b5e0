/*
 * corpus.h — the word-salad corpus the engine tests train on, written by the test itself: 16
 * words drawn by the engine's seeded RNG (seed 11, stream 5), so the bytes, and the losses
 * recorded on them, are the same on every machine.
 */
#ifndef TEST_CORPUS_H
#define TEST_CORPUS_H

/* Writes n_words words (about 5.5 bytes each) to path. 0, or -1 if the file cannot be written. */
int test_corpus_write(const char *path, int n_words);

#endif
