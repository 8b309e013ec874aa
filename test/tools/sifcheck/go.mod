module hpcctools/sifcheck

go 1.19
