# AdrOS: included by NetBSD's sys/rump/dev/lib/libpci/Makefile through
# RUMPCOMP_MAKEFILEINC_rumpdev_pci (and by our xHCI component): puts our
# rumpcomp_userfeatures_pci.h on the include path. The rumpcomp_pci_* functions themselves are
# supplied by rumpuser-adros, so no user sources are compiled here.
# (:= because .PARSEDIR is only valid while this file is being parsed.)
ADROS_BUILDRUMP_DIR:=	${.PARSEDIR}
CPPFLAGS+=	-I${ADROS_BUILDRUMP_DIR}
