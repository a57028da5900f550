"""What crosses and when, decided with no I/O: plain values in, plain values out, table-tested. Nothing here
makes a request, reads the store or the clock; it imports the domain, the errors, i18n and its own modules alone."""
