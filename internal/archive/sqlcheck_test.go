package archive

import (
	"fmt"
	"strings"
	"testing"
)

func testRename(n string) (string, error) {
	if !strings.HasPrefix(n, "wp2_") {
		return "", fmt.Errorf("%s is not the site's", quoteIdent(n))
	}
	return "wp_" + n[4:], nil
}

func TestCheckView(t *testing.T) {
	const head = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `wp2_v` AS "
	ok := []struct{ in, want string }{
		{"select `wp2_posts`.`ID` AS `ID` from `wp2_posts` where `wp2_posts`.`ID` < 10",
			"select `wp_posts`.`ID` AS `ID` from `wp_posts` where `wp_posts`.`ID` < 10"},
		{"select `p`.`ID` AS `ID`,count(0) AS `n` from (`wp2_posts` `p` left join `wp2_postmeta` `m` on(`m`.`post_id` = `p`.`ID`)) group by `p`.`ID`",
			"select `p`.`ID` AS `ID`,count(0) AS `n` from (`wp_posts` `p` left join `wp_postmeta` `m` on(`m`.`post_id` = `p`.`ID`)) group by `p`.`ID`"},
	}
	for _, c := range ok {
		name, got, err := checkView(head+c.in, testRename)
		if err != nil || name != "wp_v" || got != "CREATE ALGORITHM=UNDEFINED SQL SECURITY INVOKER VIEW `wp_v` AS "+c.want {
			t.Errorf("checkView(%q) = %q, %q, %v", c.in, name, got, err)
		}
	}
	for _, in := range []string{
		"select `x`.`a` AS `a` from `other` `x`",
		"select 1 AS `a` from `wp2_a` join `wp2_b` on(`wp2_a`.`id` = `wp2_b`.`id`), `other`",
		"select 1 AS `a` from (`wp2_a`, `other`)",
		"select (select max(`id`) from `other`) AS `a` from `wp2_a`",
		"select 1 AS `a` from `db`.`wp2_a`",
		"select user() AS `a` from `wp2_a`",
		"select 1 AS `a` from `wp2_a` where 1 in (select `id` from `other`)",
		"select 1 AS `a` from `wp2_a` /*!50000 , other */",
	} {
		if _, out, err := checkView(head+in, testRename); err == nil {
			t.Errorf("checkView(%q) accepted: %q", in, out)
		}
	}
	if _, _, err := checkView("CREATE VIEW `other_v` AS select 1 AS `a` from `wp2_a`", testRename); err == nil {
		t.Error("a view without the prefix accepted")
	}
}

func TestCheckCreate(t *testing.T) {
	good := "CREATE TABLE `wp2_child` (\n  `id` int(11) NOT NULL,\n  `pid` int(11) DEFAULT NULL,\n  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`j`)),\n" +
		"  `t` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n  `b` bit(1) DEFAULT b'0',\n  `e` enum('a','b') DEFAULT 'a' COMMENT 'x''y',\n" +
		"  PRIMARY KEY (`id`),\n  KEY `pid` (`pid`),\n  CONSTRAINT `fk` FOREIGN KEY (`pid`) REFERENCES `wp2_parent` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci COMMENT='café'"
	got, err := checkCreate(good, "wp2_child", "wp_child", testRename)
	want := strings.Replace(strings.Replace(good, "`wp2_child`", "`wp_child`", 1), "`wp2_parent`", "`wp_parent`", 1)
	if err != nil || got != want {
		t.Errorf("checkCreate: %v\n%s", err, got)
	}
	// Tables without a key are backed up whole, so downloads hold them.
	if _, err := checkCreate(strings.Replace(good, "PRIMARY KEY (`id`),\n", "", 1), "wp2_child", "wp_child", testRename); err != nil {
		t.Errorf("checkCreate refused a table without a key: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(good, "`wp2_parent`", "`other_parent`", 1),
		strings.Replace(good, "ENGINE=InnoDB", "ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'", 1),
		strings.Replace(good, "ENGINE=InnoDB", "ENGINE=FEDERATED CONNECTION='mysql://u@h/db/t'", 1),
		strings.Replace(good, "ENGINE=InnoDB", "ENGINE=InnoDB DATA DIRECTORY='/tmp'", 1),
		strings.Replace(good, "DEFAULT NULL,", "DEFAULT (user()),", 1),
		strings.Replace(good, "DEFAULT NULL,", "DEFAULT current_user,", 1),
		"CREATE TABLE `wp2_child` LIKE `other`",
		"CREATE TABLE `wp2_child` (`id` int PRIMARY KEY) AS SELECT * FROM `other`",
		"CREATE TABLE `db`.`wp2_child` (`id` int PRIMARY KEY)",
	} {
		if out, err := checkCreate(bad, "wp2_child", "wp_child", testRename); err == nil {
			t.Errorf("checkCreate accepted:\n%s", out)
		}
	}
}

func TestCheckTrigger(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE TRIGGER wp2_t BEFORE UPDATE ON wp2_x FOR EACH ROW BEGIN SET NEW.v = NEW.v + 1000; IF NEW.a IS NULL THEN SET NEW.a = NOW(); END IF; END": "CREATE TRIGGER `wp_t` BEFORE UPDATE ON `wp_x` FOR EACH ROW BEGIN SET NEW.v = NEW.v + 1000; IF NEW.a IS NULL THEN SET NEW.a = NOW(); END IF; END",
		"CREATE DEFINER=`root`@`%` TRIGGER `wp2_t` BEFORE INSERT ON `wp2_x` FOR EACH ROW SET NEW.`v` = CONCAT(OLD.`v`, 'x')":                            "CREATE TRIGGER `wp_t` BEFORE INSERT ON `wp_x` FOR EACH ROW SET NEW.`v` = CONCAT(OLD.`v`, 'x')",
	} {
		got, err := checkTrigger(in, "wp2_x", "wp_x", testRename)
		if err != nil || got != want {
			t.Errorf("checkTrigger(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{
		"CREATE TRIGGER wp2_t BEFORE INSERT ON other FOR EACH ROW SET NEW.v = 1",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON db.wp2_x FOR EACH ROW SET NEW.v = 1",
		"CREATE TRIGGER other_t BEFORE INSERT ON wp2_x FOR EACH ROW SET NEW.v = 1",
		"CREATE TRIGGER wp2_t AFTER INSERT ON wp2_x FOR EACH ROW INSERT INTO other VALUES (NEW.v)",
		"CREATE TRIGGER wp2_t AFTER INSERT ON wp2_x FOR EACH ROW DELETE FROM wp2_y",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW SET NEW.v = (SELECT MAX(id) FROM other)",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW SET @a = 1",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW CALL p()",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW FOLLOWS wp2_u SET NEW.v = 1",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW SET NEW.v = other.v",
		"CREATE TRIGGER wp2_t BEFORE INSERT ON wp2_x FOR EACH ROW SET NEW.v = VERSION()",
	} {
		if out, err := checkTrigger(bad, "wp2_x", "wp_x", testRename); err == nil {
			t.Errorf("checkTrigger accepted %q as %q", bad, out)
		}
	}
}

func TestValuesChecker(t *testing.T) {
	for _, ok := range []string{
		"(1,'a',NULL),(2,'it\\'s \\\\ ;),(',0x00FF),(-3.5e-2,'',b'0101');\n",
		"(1,'a''b',0x0a);\n",
		"(1,'a');\r\n",
	} {
		var v valuesChecker
		for i := 0; i < len(ok); i += 3 { // in pieces
			v.feed([]byte(ok[i:min(len(ok), i+3)]))
		}
		if err := v.done(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"(1,(SELECT GROUP_CONCAT(v) FROM other));\n",
		"(1,USER());\n",
		"(1,VERSION());\n",
		"(1,1+1);\n",
		"(1,@@version);\n",
		"(1,'a');SELECT 1;\n",
		"(1,'a')\n",
		"(1,0x0);\n",
		"(1,0x);\n",
		"(1,_binary 'a');\n",
		"(1,NULLX);\n",
		"(1,'a\nb');\n",
	} {
		var v valuesChecker
		v.feed([]byte(bad))
		if v.done() == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPrefixedKeys(t *testing.T) {
	k := prefixedKeys{src: "wp2_", dst: "wp_", col: 1}
	in := "(`umeta_id`,`meta_key`,`meta_value`) VALUES (1,'wp2_capabilities','wp2_x'),(2,'nickname','wp2_'),(3,'wp2_user_level','it\\'s, (x)'),(4,'a''wp2_','b');\n"
	want := "(`umeta_id`,`meta_key`,`meta_value`) VALUES (1,'wp_capabilities','wp2_x'),(2,'nickname','wp2_'),(3,'wp_user_level','it\\'s, (x)'),(4,'a''wp2_','b');\n"
	if got := string(k.rewrite([]byte(in))); got != want {
		t.Errorf("rewrite:\n%s\nwant\n%s", got, want)
	}
	o := prefixedKeys{src: "wp2_", dst: "wp_", col: 1, only: "user_roles"}
	in = "(`option_id`,`option_name`) VALUES (1,'wp2_user_roles'),(2,'wp2_page_for_privacy_policy'),(3,'wp2_user_roles_x');\n"
	want = "(`option_id`,`option_name`) VALUES (1,'wp_user_roles'),(2,'wp2_page_for_privacy_policy'),(3,'wp2_user_roles_x');\n"
	if got := string(o.rewrite([]byte(in))); got != want {
		t.Errorf("rewrite options:\n%s\nwant\n%s", got, want)
	}
}
