/* AdrOS: config(1)'s needs-flag header for the xhci device (one or more instances). */
#define NXHCI 1
