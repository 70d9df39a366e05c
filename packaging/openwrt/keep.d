# hearth: kept across sysupgrade (configuration, token and CA files)
/etc/hearth/
