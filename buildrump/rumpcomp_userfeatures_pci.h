/*
 * AdrOS: the platform features of our rumpcomp_pci_* hypercalls (rumpuser-adros/src/pci.rs),
 * read by NetBSD's sys/rump/dev/lib/libpci/pci_user.h. Found through pci.mk
 * (RUMPCOMP_MAKEFILEINC_rumpdev_pci).
 */
#ifndef ADROS_RUMPCOMP_USERFEATURES_PCI_H
#define ADROS_RUMPCOMP_USERFEATURES_PCI_H

/* rumpcomp_pci_dmafree() exists: DMA memory is returned to the host. */
#define RUMPCOMP_USERFEATURE_PCI_DMAFREE
/* rumpcomp_pci_iospace_init() exists: port I/O BARs work. */
#define RUMPCOMP_USERFEATURE_PCI_IOSPACE

#endif
